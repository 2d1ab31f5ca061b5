// Command docket is the one Docket binary. This file wires subcommands;
// each lives in its own file and does its work through the library packages.
//
// Exit codes: 0 verified/ok, 1 verification failed or the operation failed,
// 2 usage or input error.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// exitError carries an exit code out of a subcommand.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErr marks an error as a usage or input error (exit 2).
func usageErr(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// failed marks an error as a verification failure (exit 1).
func failed(err error) error { return &exitError{code: 1, err: err} }

func main() {
	if path := os.Getenv("DOCKET_CPUPROFILE"); path != "" {
		// For measuring: DOCKET_CPUPROFILE=cpu.out docket bench …
		if f, err := os.Create(path); err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal asks the command to stop; a second one, should its
	// clean-up hang, kills the process as if no handler were set.
	context.AfterFunc(ctx, stop)
	// Output piped into a reader that left (docket bench … | head) ends
	// the command as an interrupt does, with its clean-up, instead of
	// killing it with its scratch files left behind. The handler stays:
	// later writes to the pipe fail instead of killing the clean-up. With
	// a handler set, SIGPIPE also comes for a write to any socket whose
	// peer went away (a server's client that hung up), so only standard
	// output's own end ends the command.
	ctx, outputGone := context.WithCancelCause(ctx)
	pipe := make(chan os.Signal, 1)
	signal.Notify(pipe, syscall.SIGPIPE)
	go func() {
		for range pipe {
			if outputClosed() {
				outputGone(errors.New("output closed"))
				return
			}
		}
	}()
	code := run(ctx, os.Args[1:])
	stop()
	pprof.StopCPUProfile()
	os.Exit(code)
}

// outputClosed reports whether standard output is a pipe or socket whose
// reader has gone: poll reports an error or hang-up on it.
func outputClosed() bool {
	fds := []unix.PollFd{{Fd: 1}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0 && fds[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0
}

func run(ctx context.Context, args []string) int {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	root := newRoot()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, "docket:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if strings.HasPrefix(err.Error(), "unknown command") { // cobra's own usage error
		return 2
	}
	return 1
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "docket",
		Short:         "Docket: the evidence ledger for changes made by AI coding agents",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{code: 2, err: fmt.Errorf("%w\n%s", err, c.UsageString())}
	})
	addKMSFlags(root)
	root.AddCommand(newOTSCmd(), newAnchorCmd(), newExportCmd(), newAgentCmd(), newHookCmd(), newDemoCmd(), newKeysCmd(), newVerifyCmd(), newCheckpointCmd(), newBenchCmd(), newPrincipalsCmd(), newAgentsCmd(), newProjectionsCmd(), newServeCmd())
	// Unknown subcommands and bad argument counts are usage errors too.
	for _, c := range append(root.Commands(), root) {
		wrapArgs(c)
	}
	return root
}

func wrapArgs(c *cobra.Command) {
	for _, sub := range c.Commands() {
		wrapArgs(sub)
	}
	if c.Args == nil {
		if c.HasSubCommands() || !c.Runnable() {
			c.Args = cobra.NoArgs
			c.RunE = func(c *cobra.Command, args []string) error {
				return usageErr("%s needs a subcommand\n%s", c.CommandPath(), c.UsageString())
			}
		}
		return
	}
	check := c.Args
	c.Args = func(c *cobra.Command, args []string) error {
		if err := check(c, args); err != nil {
			return &exitError{code: 2, err: err}
		}
		return nil
	}
}

// dataFlag registers --data on a subcommand and returns where it lands.
func dataFlag(c *cobra.Command) *string {
	p := new(string)
	c.Flags().StringVar(p, "data", envOr("DOCKET_DATA", "./docket-data"), "data directory (env DOCKET_DATA)")
	return p
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// Paths inside a data directory.
func ledgerPath(data string) string { return filepath.Join(data, "ledger.db") }
func keyPath(data string) string    { return filepath.Join(data, "keys", "checkpoint.pem") }

// witnessPath holds the last signed checkpoint beside the key, outside the
// database it vouches for.
func witnessPath(data string) string { return filepath.Join(data, "keys", "last-checkpoint") }
