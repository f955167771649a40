// Package receipt stores the files of expense receipts: what a receipt may be (type, size), the Store
// they live in (a directory on disk by default), and the Janitor that removes uploads never attached to
// an expense once their URL expired. The rules of an upload (who, when, how often) live in Postgres
// (sql/000009_expenses_and_receipts.up.sql); this package only holds bytes.
package receipt

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"time"
)

// MaxSize is the largest receipt accepted: 10 MB.
const MaxSize = 10 << 20

// Types maps the extensions a receipt may have to its content type.
var Types = map[string]string{
	"jpg":  "image/jpeg",
	"jpeg": "image/jpeg",
	"png":  "image/png",
	"webp": "image/webp",
	"pdf":  "application/pdf",
}

// ContentTypes are the content types a receipt may have.
var ContentTypes = []string{"image/jpeg", "image/png", "image/webp", "application/pdf"}

// Store keeps receipt files under keys of the form <organization>/<employee>/<receipt>.<ext>.
type Store interface {
	// Put stores what r yields under key, atomically: when r fails half-way, nothing is left behind.
	Put(ctx context.Context, key string, r io.Reader) error
	// Open returns the file under key, or an error wrapping fs.ErrNotExist.
	Open(ctx context.Context, key string) (File, error)
	// Delete removes the file under key; a missing file is not an error.
	Delete(ctx context.Context, key string) error
}

// File is a stored receipt, readable from any offset.
type File interface {
	io.ReadSeekCloser
	ModTime() time.Time
}

// Errors of Accept, for the answer to the upload.
var (
	ErrTooLarge     = fmt.Errorf("a receipt is at most %d MB", MaxSize>>20)
	ErrWrongContent = errors.New("the file's content is not of the declared type")
)

// Accepted is an upload being read into a store: its reader yields the body while counting and hashing
// it, and fails with ErrTooLarge past MaxSize.
type Accepted struct {
	r    io.Reader
	n    int64
	hash hash.Hash
}

// Accept checks that body is of content type want by its first bytes (what the client declared is not
// trusted) and returns the reader to store, or ErrWrongContent.
func Accept(body io.Reader, want string) (*Accepted, error) {
	br := bufio.NewReaderSize(body, 512)
	head, err := br.Peek(512)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if len(head) == 0 || http.DetectContentType(head) != want {
		return nil, ErrWrongContent
	}
	return &Accepted{r: br, hash: sha256.New()}, nil
}

func (a *Accepted) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	a.n += int64(n)
	a.hash.Write(p[:n])
	if a.n > MaxSize {
		return n, ErrTooLarge
	}
	return n, err
}

// Size is how many bytes were read.
func (a *Accepted) Size() int64 { return a.n }

// SHA256 is the hex digest of what was read.
func (a *Accepted) SHA256() string { return hex.EncodeToString(a.hash.Sum(nil)) }
