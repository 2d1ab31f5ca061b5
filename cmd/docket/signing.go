package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/evidence-parity/docket/anchors"
	kmssigner "github.com/evidence-parity/docket/anchors/kms"
	"github.com/evidence-parity/docket/ledger/sqlite"
)

// kmsFlags are the root's --kms-key-id and --kms-endpoint: with a key id,
// every command that signs checkpoints signs them through AWS KMS and no
// private key is read or created. They are persistent flags so that serve,
// checkpoint, keys show and the identity commands agree on the key.
var kmsFlags struct {
	keyID    string
	endpoint string
	region   string
}

func addKMSFlags(root *cobra.Command) {
	f := root.PersistentFlags()
	f.StringVar(&kmsFlags.keyID, "kms-key-id", envOr("DOCKET_KMS_KEY_ID", ""), "sign checkpoints with this AWS KMS key (key id, ARN or alias/NAME); region and credentials from the AWS configuration chain (env DOCKET_KMS_KEY_ID)")
	f.StringVar(&kmsFlags.endpoint, "kms-endpoint", envOr("DOCKET_KMS_ENDPOINT", ""), "KMS endpoint URL for non-AWS endpoints such as local-kms (env DOCKET_KMS_ENDPOINT)")
	f.StringVar(&kmsFlags.region, "kms-region", envOr("DOCKET_KMS_REGION", ""), "override the AWS region for KMS (env DOCKET_KMS_REGION)")
}

// checkpointSigner is the signer the flags select: the KMS key when
// --kms-key-id is set, else the local key file (created when create is
// true). kms is non-nil for a KMS key.
func checkpointSigner(ctx context.Context, data string, create bool) (s anchors.Signer, kms *kmssigner.Signer, err error) {
	if kmsFlags.keyID == "" {
		f, err := anchors.OpenFileSigner(keyPath(data), create)
		return f, nil, err
	}
	k, err := kmssigner.New(ctx, kmssigner.Config{KeyID: kmsFlags.keyID, Endpoint: kmsFlags.endpoint, Region: kmsFlags.region})
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint key: %w", err)
	}
	return k, k, nil
}

// openWritable opens the ledger at data for writing with the selected
// checkpoint key, creating the ledger (and a local key) on first use.
func openWritable(ctx context.Context, data string) (*sqlite.Store, error) {
	s, _, err := openWritableKMS(ctx, data)
	return s, err
}

func openWritableKMS(ctx context.Context, data string) (*sqlite.Store, *kmssigner.Signer, error) {
	signer, kms, err := checkpointSigner(ctx, data, true)
	if err != nil {
		return nil, nil, err
	}
	// The witness lives beside the local key; with a KMS key there is no
	// key file to have made the directory.
	if err := os.MkdirAll(filepath.Dir(witnessPath(data)), 0o700); err != nil {
		return nil, nil, err
	}
	s, err := sqlite.Open(ctx, ledgerPath(data), sqlite.Options{Signer: signer, WitnessPath: witnessPath(data)})
	return s, kms, err
}
