package ledger

import (
	"context"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Tree gives access to the RFC 6962 Merkle tree a store keeps over its log.
//
// NodeHashes returns the hash of each perfect-subtree node (level, index) in
// ids, in order; every node MUST lie within the committed log (its last leaf
// stored). Level 0 nodes are leaf hashes.
type Tree interface {
	NodeHashes(ctx context.Context, ids []compact.NodeID) ([][]byte, error)
}

// Hasher is the RFC 6962 hasher every Docket tree uses.
var Hasher = rfc6962.DefaultHasher

// RangeFactory builds compact ranges with RFC 6962 hashing.
var RangeFactory = &compact.RangeFactory{Hash: Hasher.HashChildren}

// InclusionProof returns the RFC 6962 §2.1.1 audit path for the leaf at
// index in the tree of the given size.
func InclusionProof(ctx context.Context, t Tree, index, size uint64) ([][]byte, error) {
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, fmt.Errorf("inclusion proof: %w", err)
	}
	return fetchProof(ctx, t, nodes)
}

// ConsistencyProof returns the RFC 6962 §2.1.2 consistency proof between
// tree sizes size1 <= size2.
func ConsistencyProof(ctx context.Context, t Tree, size1, size2 uint64) ([][]byte, error) {
	nodes, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, fmt.Errorf("consistency proof: %w", err)
	}
	return fetchProof(ctx, t, nodes)
}

func fetchProof(ctx context.Context, t Tree, nodes proof.Nodes) ([][]byte, error) {
	hashes, err := t.NodeHashes(ctx, nodes.IDs)
	if err != nil {
		return nil, fmt.Errorf("read tree: %w", err)
	}
	return nodes.Rehash(hashes, Hasher.HashChildren)
}

// VerifyInclusion checks an inclusion proof for leafHash at index against
// root of a tree of the given size.
func VerifyInclusion(index, size uint64, leafHash []byte, p [][]byte, root []byte) error {
	return proof.VerifyInclusion(Hasher, index, size, leafHash, p, root)
}

// VerifyConsistency checks that root2 (size2) extends root1 (size1).
func VerifyConsistency(size1, size2 uint64, p [][]byte, root1, root2 []byte) error {
	return proof.VerifyConsistency(Hasher, size1, size2, p, root1, root2)
}

// RootAt computes the root hash of the first size leaves of t from the
// perfect subtrees that cover them.
func RootAt(ctx context.Context, t Tree, size uint64) ([]byte, error) {
	if size == 0 {
		return Hasher.EmptyRoot(), nil
	}
	ids := compact.RangeNodes(0, size, nil)
	hashes, err := t.NodeHashes(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("read tree: %w", err)
	}
	r, err := RangeFactory.NewRange(0, size, hashes)
	if err != nil {
		return nil, err
	}
	return r.GetRootHash(nil)
}
