package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/evidence-parity/docket/anchors"
)

func newKeysCmd() *cobra.Command {
	keys := &cobra.Command{Use: "keys", Short: "Manage the checkpoint signing key"}

	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Create the local checkpoint signing key (mode 0600) unless it exists",
		Args:  cobra.NoArgs,
	}
	initData := dataFlag(initCmd)
	initCmd.RunE = func(c *cobra.Command, _ []string) error {
		path := keyPath(*initData)
		_, statErr := os.Stat(path)
		s, err := anchors.OpenFileSigner(path, true)
		if err != nil {
			return err
		}
		fp, err := anchors.Fingerprint(s.Public())
		if err != nil {
			return err
		}
		verb := "created"
		if statErr == nil {
			verb = "kept existing"
		}
		fmt.Fprintf(c.OutOrStdout(), "%s key %s\nfingerprint %s\n", verb, path, fp)
		return nil
	}

	show := &cobra.Command{
		Use:   "show",
		Short: "Print the public key (PEM) and its fingerprint, which auditors pin",
		Long: `Prints the checkpoint key's public key and fingerprint: the local key file's,
or with --kms-key-id the AWS KMS key's (fetched with GetPublicKey; no private
key is involved).`,
		Args: cobra.NoArgs,
	}
	showData := dataFlag(show)
	onlyFP := show.Flags().Bool("fingerprint", false, "print only the fingerprint")
	show.RunE = func(c *cobra.Command, _ []string) error {
		s, _, err := checkpointSigner(c.Context(), *showData, false)
		if errors.Is(err, anchors.ErrNoKey) {
			return usageErr("%v", err)
		}
		if err != nil {
			return err
		}
		fp, err := anchors.Fingerprint(s.Public())
		if err != nil {
			return err
		}
		if *onlyFP {
			fmt.Fprintln(c.OutOrStdout(), fp)
			return nil
		}
		pem, err := anchors.PublicPEM(s.Public())
		if err != nil {
			return err
		}
		fmt.Fprintf(c.OutOrStdout(), "%sfingerprint %s\n", pem, fp)
		return nil
	}
	keys.AddCommand(initCmd, show)
	return keys
}
