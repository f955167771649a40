package httpapi

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

// SSE ids are opaque. A stream position counts the events of every organization, so an id that showed it
// would tell an admin how much the other tenants do. An id is instead one AES block, 8 bytes of position
// (big-endian) and the first 8 bytes of the organization's id, encrypted with the key of app.stream_keys
// (shared by every server process, so a client may resume on any of them) and written base64url without
// padding: 22 characters. The encryption is a permutation of one block, so the same event has the same id
// everywhere and ids of different events never collide; without the key nothing about the position or
// the order shows.

// streamIDLen is the length of an encoded id: 16 bytes in unpadded base64url.
const streamIDLen = 22

// streamIDEncoding is strict, so that each id has exactly one spelling.
var streamIDEncoding = base64.RawURLEncoding.Strict()

// streamIDs turns one organization's stream positions into its SSE ids and back.
type streamIDs struct {
	block cipher.Block
	org   uuid.UUID
}

// newStreamIDs returns the codec of org's ids under key (16 or 32 bytes: AES-128 or AES-256).
func newStreamIDs(key []byte, org uuid.UUID) (streamIDs, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return streamIDs{}, fmt.Errorf("stream key: %w", err)
	}
	return streamIDs{block: block, org: org}, nil
}

// id is the opaque id of position pos.
func (c streamIDs) id(pos int64) string {
	var b [aes.BlockSize]byte
	binary.BigEndian.PutUint64(b[:8], uint64(pos))
	copy(b[8:], c.org[:8])
	c.block.Encrypt(b[:], b[:])
	return streamIDEncoding.EncodeToString(b[:])
}

// position is the stream position id stands for. ok is false for anything this server did not give the
// organization: another organization's id, an id under another key, an old numeric id, garbage.
func (c streamIDs) position(id string) (pos int64, ok bool) {
	if len(id) != streamIDLen {
		return 0, false
	}
	b, err := streamIDEncoding.DecodeString(id)
	if err != nil || len(b) != aes.BlockSize {
		return 0, false
	}
	c.block.Decrypt(b, b)
	pos = int64(binary.BigEndian.Uint64(b[:8]))
	if !bytes.Equal(b[8:], c.org[:8]) || pos < 0 {
		return 0, false
	}
	return pos, true
}

// streamKey is the key of app.stream_keys, read once (as the worker role: the API role cannot) and kept
// for the life of the process.
type streamKey struct {
	mu  sync.Mutex
	key []byte
}

// streamKeyTimeout bounds the read of the key at start, so a server whose database is down still starts
// (and reads it when the first stream opens).
const streamKeyTimeout = 2 * time.Second

// loadStreamKey reads the key unless it is known already. It fails when the database cannot be reached
// or the key is missing (migration 000016 creates it).
func (s *Server) loadStreamKey(ctx context.Context) ([]byte, error) {
	s.streamKey.mu.Lock()
	defer s.streamKey.mu.Unlock()
	if s.streamKey.key != nil {
		return s.streamKey.key, nil
	}
	key, err := db.Do(ctx, s.pool, db.Claims{}, db.TxOptions{Role: db.WorkerRole, ReadOnly: true, SingleStatement: true,
		AcquireTimeout: s.cfg.DBAcquireTimeout}, func(tx db.DBTX) ([]byte, error) {
		return s.q.StreamKey(ctx, tx)
	})
	if err != nil {
		return nil, fmt.Errorf("reading app.stream_keys: %w", err)
	}
	if _, err := aes.NewCipher(key); err != nil {
		return nil, fmt.Errorf("app.stream_keys: %w", err)
	}
	s.streamKey.key = key
	return key, nil
}

// streamIDsOf is the id codec of org's stream; without the key (database down since start) the stream
// is unavailable for now.
func (s *Server) streamIDsOf(ctx context.Context, org uuid.UUID) (streamIDs, error) {
	key, err := s.loadStreamKey(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "stream key not loaded", "error", err.Error())
		return streamIDs{}, errUnavailable("The event stream is starting, please retry")
	}
	return newStreamIDs(key, org)
}
