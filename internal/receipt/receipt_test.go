package receipt

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDisk_PutIsAtomicAndKeysStayInsideTheStore(t *testing.T) {
	dir := t.TempDir()
	d, err := NewDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := d.Put(ctx, "org/emp/a.pdf", strings.NewReader("%PDF-1.4 receipt")); err != nil {
		t.Fatal(err)
	}
	f, err := d.Open(ctx, "org/emp/a.pdf")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if string(got) != "%PDF-1.4 receipt" {
		t.Fatalf("read back %q", got)
	}
	// A reader failing half-way leaves nothing, not even its temporary file.
	broken := io.MultiReader(strings.NewReader("half"), iotestErr{})
	if err := d.Put(ctx, "org/emp/b.pdf", broken); err == nil {
		t.Fatal("a failing reader was stored")
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "org", "emp"))
	if len(entries) != 1 || entries[0].Name() != "a.pdf" {
		t.Fatalf("the store holds %v, want a.pdf alone", entries)
	}
	if tmp, _ := os.ReadDir(filepath.Join(dir, ".tmp")); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
	for _, key := range []string{"../outside.pdf", "org/../../outside.pdf", ""} {
		if err := d.Put(ctx, key, strings.NewReader("x")); err == nil {
			t.Errorf("key %q was stored", key)
		}
	}
	if _, err := d.Open(ctx, "org/emp/missing.pdf"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("opening a missing key: %v, want fs.ErrNotExist", err)
	}
	if err := d.Delete(ctx, "org/emp/a.pdf"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "org/emp/a.pdf"); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
}

type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestNewDisk_RemovesTemporaryFilesOfCrashedUploads(t *testing.T) {
	dir := t.TempDir()
	if _, err := NewDisk(dir); err != nil {
		t.Fatal(err)
	}
	stale, fresh := filepath.Join(dir, ".tmp", "upload-1"), filepath.Join(dir, ".tmp", "upload-2")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := NewDisk(dir); err != nil { // the next start
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a 2 h old temporary file survived: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("an upload in progress lost its temporary file: %v", err)
	}
}

func TestAccept_SniffsTheContentAndCapsTheSize(t *testing.T) {
	pdf := []byte("%PDF-1.7\n...")
	if _, err := Accept(bytes.NewReader(pdf), "image/png"); !errors.Is(err, ErrWrongContent) {
		t.Fatalf("a PDF accepted as a PNG: %v", err)
	}
	if _, err := Accept(bytes.NewReader(nil), "application/pdf"); !errors.Is(err, ErrWrongContent) {
		t.Fatalf("an empty body accepted: %v", err)
	}
	a, err := Accept(bytes.NewReader(pdf), "application/pdf")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(a); !bytes.Equal(got, pdf) || a.Size() != int64(len(pdf)) || len(a.SHA256()) != 64 {
		t.Fatalf("read %q, size %d", got, a.Size())
	}
	big, err := Accept(io.MultiReader(bytes.NewReader(pdf), bytes.NewReader(make([]byte, MaxSize))), "application/pdf")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("past %d bytes: %v, want ErrTooLarge", MaxSize, err)
	}
}
