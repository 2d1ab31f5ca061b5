package ots

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// vectors is the shared folder of OpenTimestamps proofs from the reference
// implementations' examples (copied from ../shared/vectors into testdata/vectors with their README).
const vectors = "testdata/vectors"

func readVector(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectors, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parseVector(t *testing.T, name string) *File {
	t.Helper()
	f, err := Parse(readVector(t, name))
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return f
}

func vectorHeaders(t *testing.T) *Headers {
	t.Helper()
	hs, err := ParseHeaders(bytes.NewReader(readVector(t, "bitcoin-block-358391-header.hex")))
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

func TestRoundTripIsByteIdentical(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(vectors, "*.ots"))
	if err != nil || len(files) < 6 {
		t.Fatalf("want the six valid vectors, found %d (%v)", len(files), err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			raw, _ := os.ReadFile(path)
			f, err := Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			out, err := f.Serialize()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, raw) {
				t.Fatalf("re-serialized %d bytes differ from the %d read", len(out), len(raw))
			}
			stamped, err := os.ReadFile(strings.TrimSuffix(path, ".ots"))
			if err != nil {
				t.Fatal(err)
			}
			if sum := sha256.Sum256(stamped); !bytes.Equal(sum[:], f.Digest()) {
				t.Fatalf("digest %x, want the stamped file's %x", f.Digest(), sum)
			}
		})
	}
}

func TestInvalidFilesAreRejected(t *testing.T) {
	for name, want := range map[string]string{
		"invalid/bad-major-version.ots":        "unsupported major version",
		"invalid/invalid-file-digest-type.ots": "is not a hash operation",
		"invalid/exceeds-max-msg-length.ots":   "exceeds the limit of 4096",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(readVector(t, name))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
				t.Fatalf("got %v, want an ErrInvalid saying %q", err, want)
			}
		})
	}
}

func TestMalformedInputIsRejected(t *testing.T) {
	good := readVector(t, "two-calendars.txt.ots")
	cases := map[string][]byte{
		"empty":            nil,
		"magic only":       good[:len(magic)],
		"truncated digest": good[:len(magic)+10],
		"truncated tree":   good[:len(good)-3],
		"trailing garbage": append(bytes.Clone(good), 0x00),
		"not ots":          []byte("hello"),
		"huge varuint":     append(bytes.Clone(magic), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
		"deep nesting":     append(append(append(bytes.Clone(magic), 1, TagSHA256), make([]byte, 32)...), bytes.Repeat([]byte{TagSHA256}, 300)...),
		"too big":          make([]byte, MaxFileSize+1),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse(b); !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
}

func TestHelloWorldVerifiesAgainstBlock358391(t *testing.T) {
	f := parseVector(t, "hello-world.txt.ots")
	digest := sha256.Sum256(readVector(t, "hello-world.txt"))
	rep, err := Verify(context.Background(), f, digest[:], vectorHeaders(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	got := rep.Verified[0]
	if got.Height != 358391 || got.Time.Unix() != 1432827678 ||
		got.BlockHash != "000000000000000003e892881a8cdcdc117c06d444057c98b6f04a9ee75a2319" {
		t.Fatalf("got %+v", got)
	}
	atts := f.Timestamp.Attestations()
	if len(atts) != 1 || ReversedHex(atts[0].Msg) != "8a1b66ecb7cbd07d8139a7e7d7f2c41aab1f5009b8364aaf61d03ad245e47e00" {
		t.Fatalf("commitment: got %+v", atts)
	}
}

func TestBadStampFailsWithMerkleRootMismatch(t *testing.T) {
	f := parseVector(t, "bad-stamp.txt.ots")
	digest := sha256.Sum256(readVector(t, "bad-stamp.txt"))
	rep, err := Verify(context.Background(), f, digest[:], vectorHeaders(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); !errors.Is(err, ErrMerkleRootMismatch) || !strings.Contains(err.Error(), "block 358391") {
		t.Fatalf("got %v, want a merkle root mismatch at block 358391", err)
	}
}

func TestVerifyReasons(t *testing.T) {
	ctx := context.Background()
	hello := parseVector(t, "hello-world.txt.ots")
	digest := sha256.Sum256(readVector(t, "hello-world.txt"))

	t.Run("digest mismatch", func(t *testing.T) {
		other := sha256.Sum256([]byte("something else"))
		if _, err := Verify(ctx, hello, other[:], nil); !errors.Is(err, ErrDigestMismatch) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("header not supplied", func(t *testing.T) {
		rep, _ := Verify(ctx, hello, digest[:], nil)
		if err := rep.Err(); !errors.Is(err, ErrHeaderMissing) || !strings.Contains(err.Error(), "block 358391") {
			t.Fatalf("got %v", err)
		}
		other := &Headers{byHeight: map[uint64]Header{1: {}}}
		rep, _ = Verify(ctx, hello, digest[:], other)
		if err := rep.Err(); !errors.Is(err, ErrHeaderMissing) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("bad proof of work", func(t *testing.T) {
		h := vectorHeaders(t).loose[0]
		h[0] ^= 1 // version: the hash changes, the merkle root does not
		rep, _ := Verify(ctx, hello, digest[:], &Headers{byHeight: map[uint64]Header{358391: h}})
		if err := rep.Err(); !errors.Is(err, ErrBadProofOfWork) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("pending", func(t *testing.T) {
		f := parseVector(t, "two-calendars.txt.ots")
		rep, err := Verify(ctx, f, f.Digest(), vectorHeaders(t))
		if err != nil {
			t.Fatal(err)
		}
		err = rep.Err()
		if !errors.Is(err, ErrNotVerified) || !strings.Contains(err.Error(), "alice.btc.calendar.opentimestamps.org") ||
			!strings.Contains(err.Error(), "bob.btc.calendar.opentimestamps.org") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("unknown notary is kept, not verified", func(t *testing.T) {
		f := parseVector(t, "unknown-notary.txt.ots")
		rep, _ := Verify(ctx, f, f.Digest(), nil)
		if len(rep.Other) != 1 || rep.Err() == nil {
			t.Fatalf("got %+v", rep)
		}
	})
}

func TestHeadersChain(t *testing.T) {
	real := vectorHeaders(t).loose[0]
	next := Header{}
	h := real.Hash()
	copy(next[4:36], h[:])
	t.Run("linked with heights carried", func(t *testing.T) {
		in := "358391 " + hexOf(real[:]) + "\n" + hexOf(next[:]) + "\n"
		hs, err := ParseHeaders(strings.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := hs.byHeight[358392]; !ok {
			t.Fatalf("height not carried: %v", hs.byHeight)
		}
	})
	t.Run("unlinked", func(t *testing.T) {
		in := hexOf(real[:]) + "\n" + hexOf(real[:]) + "\n"
		if _, err := ParseHeaders(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), "does not link") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("not hex", func(t *testing.T) {
		if _, err := ParseHeaders(strings.NewReader("zz\n")); err == nil {
			t.Fatal("accepted")
		}
	})
}

func TestOperations(t *testing.T) {
	msg := []byte("abc")
	for _, c := range []struct {
		op   Op
		want string
	}{
		{Op{Tag: TagSHA1}, "a9993e364706816aba3e25717850c26c9cd0d89d"},
		{Op{Tag: TagRIPEMD160}, "8eb208f7e05d987a9b044a8e98c6b087f15a0bfc"},
		{Op{Tag: TagSHA256}, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		// Keccak-256 with the original padding (Ethereum), not SHA3-256.
		{Op{Tag: TagKeccak256}, "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"},
		{Op{Tag: TagReverse}, "636261"},
		{Op{Tag: TagHexlify}, "363136323633"},
		{Append([]byte{1}), "61626301"},
		{Prepend([]byte{1}), "01616263"},
	} {
		t.Run(c.op.String(), func(t *testing.T) {
			out, err := c.op.Apply(msg)
			if err != nil {
				t.Fatal(err)
			}
			if got := hexOf(out); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
	if _, err := (Op{Tag: TagHexlify}).Apply(make([]byte, 2049)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("hexlify of 2049 bytes: got %v", err)
	}
	if _, err := Append(make([]byte, 10)).Apply(make([]byte, 4090)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("append past 4096: got %v", err)
	}
}

func TestMerge(t *testing.T) {
	a := parseVector(t, "two-calendars.txt.ots")
	// Two proofs of the same digest, each with one calendar, merge into one
	// with both.
	only := func(keep int) *File {
		f := parseVector(t, "two-calendars.txt.ots")
		n := f.Timestamp.Branches[0].Next.Branches[0].Next
		n.Branches = []Branch{n.Branches[keep]}
		return f
	}
	alice, bob := only(0), only(1)
	if err := alice.Timestamp.Merge(bob.Timestamp); err != nil {
		t.Fatal(err)
	}
	got, _ := alice.Serialize()
	want, _ := a.Serialize()
	if !bytes.Equal(got, want) {
		t.Fatal("merged proof differs from the two-calendar proof")
	}
	// Merging again changes nothing.
	if err := alice.Timestamp.Merge(bob.Timestamp); err != nil {
		t.Fatal(err)
	}
	if again, _ := alice.Serialize(); !bytes.Equal(again, want) {
		t.Fatal("merge is not idempotent")
	}
	if err := alice.Timestamp.Merge(New([]byte("x"))); err == nil {
		t.Fatal("merged timestamps of different messages")
	}
}

// TestForgedLowDifficultyHeaderIsRefused: a header anyone can mine — a
// target easier than mainnet's limit — proves nothing, even when its merkle
// root and proof of work match.
func TestForgedLowDifficultyHeaderIsRefused(t *testing.T) {
	data := []byte("backdated")
	digest := sha256.Sum256(data)
	f := NewFile(digest)
	f.Timestamp.Attest(NewBitcoin(1))
	var h Header
	copy(h[36:68], digest[:])
	h[72], h[73], h[74], h[75] = 0xff, 0xff, 0x00, 0x21 // nBits 0x2100ffff: target about 2^256
	for n := 0; h.CheckProofOfWork() != nil; n++ {
		h[76] = byte(n)
	}
	hs := &Headers{loose: []Header{h}}
	rep, err := Verify(context.Background(), f, digest[:], hs)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); !errors.Is(err, ErrBadProofOfWork) || !strings.Contains(err.Error(), "easier than Bitcoin mainnet allows") {
		t.Fatalf("forged header: got %v", err)
	}
	// The real block 358391 meets mainnet's limit.
	if err := vectorHeaders(t).loose[0].CheckDifficulty(); err != nil {
		t.Fatal(err)
	}
}
