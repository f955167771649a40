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

// Disk is a Store in a directory: each file at <root>/<key>, written to a temporary file in
// <root>/.tmp first and renamed into place, so a reader never sees half a receipt. Every process that
// serves the API must see the same directory (one machine, or a shared volume): a receipt uploaded
// through one process is fetched through any.
type Disk struct{ root, tmp string }

// staleTemp is the age past which a temporary file is left over from a process that died mid-upload.
const staleTemp = time.Hour

// NewDisk returns a Store in dir, creating it when missing, and removes temporary files that crashed
// uploads left behind.
func NewDisk(dir string) (*Disk, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	d := &Disk{root: abs, tmp: filepath.Join(abs, ".tmp")}
	if err := os.MkdirAll(d.tmp, 0o750); err != nil {
		return nil, fmt.Errorf("receipts directory: %w", err)
	}
	entries, err := os.ReadDir(d.tmp)
	if err != nil {
		return nil, fmt.Errorf("receipts directory: %w", err)
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleTemp {
			_ = os.Remove(filepath.Join(d.tmp, e.Name()))
		}
	}
	return d, nil
}

// path maps a key to its file, refusing keys that would leave the root.
func (d *Disk) path(key string) (string, error) {
	p := filepath.Join(d.root, filepath.FromSlash(key))
	if key == "" || !strings.HasPrefix(p, d.root+string(filepath.Separator)) {
		return "", fmt.Errorf("receipt key %q is outside the store", key)
	}
	return p, nil
}

// Put writes r to a temporary file and renames it into place.
func (d *Disk) Put(_ context.Context, key string, r io.Reader) (err error) {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(d.tmp, "upload-*")
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
