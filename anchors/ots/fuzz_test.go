package ots

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: no input panics or runs away, and whatever parses serializes
// back to exactly the bytes read and prints.
func FuzzParse(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join(vectors, "*.ots"))
	more, _ := filepath.Glob(filepath.Join(vectors, "invalid", "*.ots"))
	for _, p := range append(paths, more...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Parse(b)
		if err != nil {
			return
		}
		out, err := file.Serialize()
		if err != nil {
			t.Fatalf("parsed but does not serialize: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip changed the bytes")
		}
		_ = file.Info()
		_ = file.Timestamp.Attestations()
	})
}
