package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

// KeyRing holds the ES256 keys of built-in identity, loaded from app.signing_keys as fieldtrack_issuer:
// the current key signs access tokens; it and every key retired less than an access token's life ago
// (plus a margin for the other processes' reload) verify them and are published as the JWKS.
type KeyRing struct {
	pool      *pgxpool.Pool
	q         *db.Queries
	accessTTL time.Duration
	log       *slog.Logger

	mu       sync.RWMutex
	current  signingKey
	verify   map[string]*ecdsa.PublicKey
	jwks     []byte
	lastMiss time.Time // the last reload an unknown kid caused
}

type signingKey struct {
	kid  string
	priv *ecdsa.PrivateKey
}

// reloadEvery is how often a process looks for a rotated key; a retired key verifies this much longer
// than its last tokens live.
const reloadEvery = 30 * time.Second

var issuer = db.TxOptions{Role: db.IssuerRole, StatementTimeout: 10 * time.Second}

// NewKeyRing returns an empty key ring; Load fills it.
func NewKeyRing(pool *pgxpool.Pool, accessTTL time.Duration, log *slog.Logger) *KeyRing {
	return &KeyRing{pool: pool, q: db.New(), accessTTL: accessTTL, log: log.With("component", "identity")}
}

// Load reads the keys, creating the first one when there is none yet (several processes starting at
// once agree on one). It waits at most 10 s for the database.
func (k *KeyRing) Load(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := k.reload(ctx); err != nil {
		return err
	}
	if k.signer().priv != nil {
		return nil
	}
	kid, der, err := newKey()
	if err != nil {
		return err
	}
	_, err = db.Do(ctx, k.pool, db.Claims{}, issuer, func(tx db.DBTX) (int64, error) {
		return k.q.SigningKeyCreateFirst(ctx, tx, db.SigningKeyCreateFirstParams{Kid: kid, PrivateKey: der})
	})
	if err != nil {
		return fmt.Errorf("first signing key: %w", err)
	}
	if err := k.reload(ctx); err != nil {
		return err
	}
	if k.signer().priv == nil {
		return errors.New("no current signing key after creating one")
	}
	return nil
}

// Run reloads the keys every reloadEvery until ctx ends, so a rotation reaches every process; until a
// first load has worked (the database was down at start) it tries every 2 s.
func (k *KeyRing) Run(ctx context.Context) {
	for k.signer().priv == nil {
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
		if err := k.Load(ctx); err != nil && ctx.Err() == nil {
			k.log.Warn("loading signing keys", "error", err.Error())
		}
	}
	t := time.NewTicker(reloadEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := k.reload(ctx); err != nil && ctx.Err() == nil {
			k.log.Warn("reloading signing keys", "error", err.Error())
		}
	}
}

func (k *KeyRing) reload(ctx context.Context) error {
	rows, err := db.Do(ctx, k.pool, db.Claims{}, issuer, func(tx db.DBTX) ([]db.SigningKeysRow, error) {
		return k.q.SigningKeys(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	verifyUntil := time.Now().Add(-k.accessTTL - 2*reloadEvery - time.Minute)
	var current signingKey
	verify := map[string]*ecdsa.PublicKey{}
	var published []jwk
	for _, r := range rows {
		if r.RetiredAt != nil && r.RetiredAt.Before(verifyUntil) {
			continue
		}
		parsed, err := x509.ParsePKCS8PrivateKey(r.PrivateKey)
		priv, ok := parsed.(*ecdsa.PrivateKey)
		if err != nil || !ok || priv.Curve != elliptic.P256() {
			return fmt.Errorf("signing key %s is not a P-256 key", r.Kid)
		}
		if r.RetiredAt == nil {
			current = signingKey{kid: r.Kid, priv: priv}
		}
		verify[r.Kid] = &priv.PublicKey
		published = append(published, publicJWK(r.Kid, &priv.PublicKey))
	}
	set, err := json.Marshal(map[string]any{"keys": published})
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.current, k.verify, k.jwks = current, verify, set
	k.mu.Unlock()
	return nil
}

// signer is the current key.
func (k *KeyRing) signer() signingKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.current
}

// VerificationKey is the public key of kid. A kid it does not know makes it reload (at most once a
// second), for a key another process has just rotated in.
func (k *KeyRing) VerificationKey(ctx context.Context, kid string) (*ecdsa.PublicKey, bool) {
	k.mu.RLock()
	key, ok := k.verify[kid]
	recent := time.Since(k.lastMiss) < time.Second
	k.mu.RUnlock()
	if ok || recent {
		return key, ok
	}
	k.mu.Lock()
	k.lastMiss = time.Now()
	k.mu.Unlock()
	if _, err := uuid.Parse(kid); err != nil { // not a kid of ours: no reason to look
		return nil, false
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := k.reload(rctx); err != nil {
		k.log.Warn("reloading signing keys for an unknown kid", "error", err.Error())
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	key, ok = k.verify[kid]
	return key, ok
}

// JWKS is the JSON Web Key Set of the keys that verify.
func (k *KeyRing) JWKS() []byte {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.jwks
}

// Rotate makes a new current key and retires the one before it (it keeps verifying its tokens until
// they expire). Every process signs with the new key within reloadEvery.
func Rotate(ctx context.Context, pool *pgxpool.Pool) (string, error) {
	kid, der, err := newKey()
	if err != nil {
		return "", err
	}
	q := db.New()
	err = db.InTx(ctx, pool, db.Claims{}, db.TxOptions{Role: db.IssuerRole}, func(tx db.DBTX) error {
		if err := q.SigningKeyRetire(ctx, tx); err != nil {
			return err
		}
		n, err := q.SigningKeyCreateFirst(ctx, tx, db.SigningKeyCreateFirstParams{Kid: kid, PrivateKey: der})
		if err == nil && n != 1 { // a concurrent rotation's key is current: ours would not be
			err = errors.New("another rotation ran at the same time; run it again")
		}
		return err
	})
	return kid, err
}

func newKey() (kid string, der []byte, err error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", nil, err
	}
	der, err = x509.MarshalPKCS8PrivateKey(priv)
	return uuid.NewString(), der, err
}

// jwk is a public EC key as RFC 7517 writes it.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	// key_ops as Supabase publishes it.
	KeyOps []string `json:"key_ops"`
}

func publicJWK(kid string, pub *ecdsa.PublicKey) jwk {
	raw, err := pub.Bytes() // uncompressed point: 0x04 || X || Y, 32 bytes each
	if err != nil || len(raw) != 65 {
		panic("identity: a P-256 public key that does not encode")
	}
	enc := base64.RawURLEncoding
	return jwk{Kty: "EC", Crv: "P-256", X: enc.EncodeToString(raw[1:33]), Y: enc.EncodeToString(raw[33:]),
		Kid: kid, Alg: "ES256", Use: "sig", KeyOps: []string{"verify"}}
}
