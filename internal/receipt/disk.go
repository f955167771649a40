package receipt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Disk is a Store in a directory: each file at <root>/<key>, written to a temporary file first and
// renamed into place, so a reader never sees half a receipt.
type Disk struct{ root string }

// NewDisk returns a Store in dir, creating it when missing.
func NewDisk(dir string) (*Disk, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("receipts directory: %w", err)
	}
	return &Disk{root: abs}, nil
}

// path maps a key to its file, refusing keys that would leave the root.
func (d *Disk) path(key string) (string, error) {
	p := filepath.Join(d.root, filepath.FromSlash(key))
	if key == "" || !strings.HasPrefix(p, d.root+string(filepath.Separator)) {
		return "", fmt.Errorf("receipt key %q is outside the store", key)
	}
	return p, nil
}

// Put writes r to a temporary file beside the target and renames it into place.
func (d *Disk) Put(_ context.Context, key string, r io.Reader) (err error) {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".upload-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = io.Copy(tmp, r); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}

// Open opens the file of key.
func (d *Disk) Open(_ context.Context, key string) (File, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return diskFile{File: f, mod: st.ModTime()}, nil
}

// Delete removes the file of key.
func (d *Disk) Delete(_ context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

type diskFile struct {
	*os.File
	mod time.Time
}

func (f diskFile) ModTime() time.Time { return f.mod }
