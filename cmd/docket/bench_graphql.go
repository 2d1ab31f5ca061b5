package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	rtmetrics "runtime/metrics"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/domain/clerk"
	"github.com/evidence-parity/docket/graph"
	"github.com/evidence-parity/docket/graph/client"
	"github.com/evidence-parity/docket/projections"
)

func newBenchGraphQLCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "graphql",
		Short: "Load-test recordAction over HTTP against an in-process server, and a trivial query for comparison",
		Long: `Seeds a scratch ledger (one approved change and session per client), serves it on
127.0.0.1 with the same router as docket serve, and has --clients concurrent
clients post recordAction (the request docket-hook sends for a file edit) for
--warmup, uncounted, and then for --duration, then a trivial query ({ me { id } })
for as long. Prints throughput, p50 and p99 for both, and the ratio: the cost
the ledger path (scope check, durable append, tree) adds to a request.

The warm-up measures the server as it runs for long, not as it starts: a
ledger's write-ahead log is new at every start and grows (each fsync also
writing the file's new size) until the first restart, and the read models,
caches and heap settle; its figures are printed too.`,
		Args: cobra.NoArgs,
	}
	clients := c.Flags().Int("clients", 64, "concurrent clients")
	duration := c.Flags().Duration("duration", 10*time.Second, "how long each phase runs")
	warmup := c.Flags().Duration("warmup", 5*time.Second, "how long recordAction runs before it is measured (0: not at all)")
	rate := c.Flags().Float64("rate-limit", benchRateLimit, "the server's requests per second per principal, agent or session, as docket serve --rate-limit (every client has its own token; 0 turns the limiter off)")
	live := c.Flags().Bool("projections", true, "project the read models live while measuring, as docket serve does")
	var prof benchProfiles
	c.Flags().StringVar(&prof.trace, "trace", "", "write an execution trace of the recordAction phase to this file (go tool trace)")
	c.Flags().StringVar(&prof.cpu, "cpuprofile", "", "write a CPU profile of the recordAction phase (server and clients) to this file")
	c.Flags().StringVar(&prof.mem, "memprofile", "", "write an allocation profile of the recordAction phase to this file")
	c.RunE = func(c *cobra.Command, _ []string) error {
		if *clients < 1 || *duration <= 0 || *warmup < 0 {
			return usageErr("--clients and --duration must be positive, --warmup not negative")
		}
		err := benchGraphQL(c.Context(), c.OutOrStdout(), *clients, *warmup, *duration, *rate, *live, prof)
		if err != nil && c.Context().Err() != nil {
			// Wherever the interrupt found it (seeding, measuring), the
			// run stops and its scratch ledger is removed.
			return fmt.Errorf("bench graphql interrupted: %w", err)
		}
		return err
	}
	return c
}

// benchRateLimit is bench graphql's default --rate-limit. The limiter
// runs on every request as in docket serve, at a rate no bench client
// reaches: each client sends as fast as the server answers, hundreds of
// requests a second (at 42k/s, the trivial query's 64 clients send ~660
// each), where docket serve's default, 500, is set for people and agents.
const benchRateLimit = 20 * defaultRateLimit

type phase struct {
	ops       int    // answered with data and no GraphQL errors
	errors    int    // refused, failed or with errors in the answer
	firstErr  string // what the first of them was
	took      time.Duration
	cpu       time.Duration // user and system CPU of the whole process (server and clients)
	heap      heapAllocs    // what the whole process allocated
	latencies []time.Duration
}

func (p phase) String() string {
	slices.Sort(p.latencies)
	q := func(f float64) time.Duration {
		if len(p.latencies) == 0 {
			return 0
		}
		return p.latencies[int(f*float64(len(p.latencies)-1))]
	}
	perOp := time.Duration(0)
	if p.ops > 0 {
		perOp = p.cpu / time.Duration(p.ops)
	}
	var objects, kb float64
	if p.ops > 0 {
		objects, kb = float64(p.heap.objects)/float64(p.ops), float64(p.heap.bytes)/float64(p.ops)/1024
	}
	return fmt.Sprintf("%d ops in %v = %.0f/s, p50 %v, p99 %v, %d errors; CPU %v/op (%.0f%% of a core), %.0f allocations (%.1f KiB)/op",
		p.ops, p.took.Round(time.Millisecond), float64(p.ops)/p.took.Seconds(), q(.5).Round(10*time.Microsecond), q(.99).Round(10*time.Microsecond), p.errors,
		perOp.Round(time.Microsecond), 100*p.cpu.Seconds()/p.took.Seconds(), objects, kb)
}

// heapAllocs counts the whole process's heap allocations (server and
// clients), cumulatively. Unlike CPU time they hardly depend on the
// machine's other load, so they compare builds where a shared machine's
// noise hides a few percent of CPU. Tiny allocations (small objects
// without pointers, packed into shared blocks) count one by one, as
// testing's allocs/op counts them.
type heapAllocs struct{ objects, bytes uint64 }

func readHeapAllocs() heapAllocs {
	s := []rtmetrics.Sample{{Name: "/gc/heap/allocs:objects"}, {Name: "/gc/heap/tiny/allocs:objects"}, {Name: "/gc/heap/allocs:bytes"}}
	rtmetrics.Read(s)
	return heapAllocs{s[0].Value.Uint64() + s[1].Value.Uint64(), s[2].Value.Uint64()}
}

// hostSpeed measures what the machine gives this process now: SHA-256
// throughput in MB/s per thread, with n threads hashing at once for d. A
// shared virtual machine does not show the CPU its neighbours take (no
// steal time here): it shows as a slower process, and as a lower figure
// here, which tells a quiet host from a busy one beside the run's own.
func hostSpeed(n int, d time.Duration) float64 {
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(d)
	for range n {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			h := sha256.New()
			hashed := 0
			for time.Now().Before(deadline) {
				h.Write(buf)
				hashed += len(buf)
			}
			mu.Lock()
			total += hashed
			mu.Unlock()
		})
	}
	wg.Wait()
	return float64(total) / d.Seconds() / float64(n) / 1e6
}

// processCPU returns the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchProfiles names the pprof files to write of the recordAction phase.
type benchProfiles struct{ cpu, mem, trace string }

// start begins profiling; the returned function ends it and writes the files.
func (p benchProfiles) start() (stop func() error, err error) {
	var cpu, tr *os.File
	// end stops whatever was started; on a failed start it also removes
	// the files, which hold nothing.
	end := func(remove bool) error {
		var errs []error
		if tr != nil {
			trace.Stop()
			errs = append(errs, tr.Close())
		}
		if cpu != nil {
			pprof.StopCPUProfile()
			errs = append(errs, cpu.Close())
		}
		if p.mem != "" {
			if !remove {
				f, err := os.Create(p.mem)
				if err == nil {
					err = errors.Join(pprof.Lookup("allocs").WriteTo(f, 0), f.Close())
				}
				errs = append(errs, err)
			}
			runtime.MemProfileRate = 0
		}
		if remove {
			for _, f := range []*os.File{cpu, tr} {
				if f != nil {
					os.Remove(f.Name())
				}
			}
		}
		return errors.Join(errs...)
	}
	if p.cpu != "" {
		if cpu, err = os.Create(p.cpu); err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(cpu); err != nil {
			cpu.Close()
			os.Remove(p.cpu)
			return nil, err
		}
	}
	if p.mem != "" {
		runtime.MemProfileRate = 64 << 10
	}
	if p.trace != "" {
		f, err := os.Create(p.trace)
		if err != nil {
			end(true)
			return nil, err
		}
		if err := trace.Start(f); err != nil {
			f.Close()
			os.Remove(p.trace)
			end(true)
			return nil, err
		}
		tr = f
	}
	return func() error { return end(false) }, nil
}

func benchGraphQL(ctx context.Context, out io.Writer, clients int, warmup, duration time.Duration, rate float64, live bool, prof benchProfiles) error {
	serverRuntime() // the server's settings: this process is the server
	data, err := os.MkdirTemp("", "docket-bench-graphql-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(data)
	store, err := openWritable(ctx, data)
	if err != nil {
		return err
	}
	defer store.Close()
	proj, err := projections.Open(ctx, projectionsPath(data), store, nil)
	if err != nil {
		return err
	}
	defer proj.Close()
	if live {
		// As docket serve: the read models follow the ledger live, on
		// the same cores.
		projCtx, stopProj := context.WithCancel(context.WithoutCancel(ctx))
		projDone := make(chan struct{})
		go func() { proj.Run(projCtx); close(projDone) }()
		defer func() { stopProj(); <-projDone }()
	}
	k := clerk.New(store, clerk.Config{})

	// Seed: people, an agent, and one approved change with a live session
	// per client (a session's actions are sequential in real life).
	sys := clerk.System
	k.RegisterPrincipal(ctx, sys, "alice", "alice", "")
	k.GrantRole(ctx, sys, "alice", domain.RoleRequester, nil)
	k.RegisterPrincipal(ctx, sys, "bob", "bob", "")
	k.GrantRole(ctx, sys, "bob", domain.RoleApprover, domain.Scope{{Resource: "file:**", Verbs: []domain.Verb{domain.Read, domain.Write}}})
	_, bobTok, err := k.IssueToken(ctx, sys, "bob")
	if err != nil {
		return err
	}
	bob, err := k.Authenticate(ctx, bobTok)
	if err != nil {
		return err
	}
	// An auditor per client for the trivial query, as a session per
	// client below: the rate limit is per principal and per session.
	readerToks := make([]string, clients)
	for i := range readerToks {
		id := fmt.Sprintf("reader-%d", i)
		k.RegisterPrincipal(ctx, sys, id, id, "")
		k.GrantRole(ctx, sys, id, domain.RoleAuditor, nil)
		if _, readerToks[i], err = k.IssueToken(ctx, sys, id); err != nil {
			return err
		}
	}
	k.RegisterAgent(ctx, sys, "bench", "bench", "alice", "")
	_, key, _ := k.IssueAgentKey(ctx, sys, "bench")
	agent, err := k.Authenticate(ctx, key)
	if err != nil {
		return err
	}
	creds := make([]string, clients)
	for i := range creds {
		id, hash, err := k.SubmitPlan(ctx, agent, "", "alice", domain.Plan{Objective: "load", Method: "m", TestApproach: "t", BackoutPath: "b", Environment: "bench",
			Scope: domain.Scope{{Resource: "file:github.com/acme/api/**", Verbs: []domain.Verb{domain.Write}}}})
		if err != nil {
			return err
		}
		if err := k.Approve(ctx, bob, id, hash, ""); err != nil {
			return err
		}
		s, err := k.RequestSession(ctx, agent, id)
		if err != nil {
			return err
		}
		creds[i] = s.Credential
	}

	// As docket serve logs: a line per request, buffered, here into a
	// file of the scratch folder.
	logFile, err := os.Create(filepath.Join(data, "server.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	logger, logs := newServerLogger(logFile)
	defer logs.Close()
	e := newRouter(store, &graph.Resolver{Clerk: k, Log: store, Projections: proj, Prover: store}, logger, rate, nil, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	addr := ln.Addr().String()

	run := func(duration time.Duration, body []byte, token func(i int) string) phase {
		var mu sync.Mutex
		var all phase
		start := time.Now()
		deadline := start.Add(duration)
		cpu0, heap0 := processCPU(), readHeapAllocs()
		var wg sync.WaitGroup
		for i := range clients {
			wg.Go(func() {
				c := newLoadConn(addr, "/graphql", body, "Content-Type: application/json", "Authorization: Bearer "+token(i))
				defer c.Close()
				lat := make([]time.Duration, 0, 1024)
				errs, first := 0, ""
				for t0 := time.Now(); t0.Before(deadline) && ctx.Err() == nil; {
					status, raw, err := c.do()
					t1 := time.Now()
					switch {
					case err != nil:
						errs++
						first = cmp.Or(first, err.Error())
					case status != http.StatusOK || bytes.Contains(raw, []byte(`"errors"`)):
						errs++
						first = cmp.Or(first, fmt.Sprintf("HTTP %d: %.200s", status, bytes.TrimSpace(raw)))
					default:
						lat = append(lat, t1.Sub(t0))
					}
					t0 = t1
				}
				mu.Lock()
				all.latencies = append(all.latencies, lat...)
				all.errors += errs
				all.firstErr = cmp.Or(all.firstErr, first)
				mu.Unlock()
			})
		}
		wg.Wait()
		all.took = time.Since(start)
		all.cpu = processCPU() - cpu0
		heap := readHeapAllocs()
		all.heap = heapAllocs{heap.objects - heap0.objects, heap.bytes - heap0.bytes}
		all.ops = len(all.latencies)
		return all
	}
	// What docket-hook sends for an agent's file edit.
	action, _ := json.Marshal(map[string]any{"query": client.RecordActionQuery, "variables": map[string]any{"in": map[string]any{
		"kind": "edit", "command": "Edit src/x.go", "uses": []map[string]string{{"resource": "file:github.com/acme/api/src/x.go", "verb": "write"}}}}})
	trivial, _ := json.Marshal(map[string]string{"query": `{ me { id } }`})
	var w phase
	if warmup > 0 {
		w = run(warmup, action, func(i int) string { return creds[i] })
	}
	hostBefore := hostSpeed(runtime.NumCPU(), 300*time.Millisecond)
	stop, err := prof.start()
	if err != nil {
		return err
	}
	before := store.Stats()
	a := run(duration, action, func(i int) string { return creds[i] })
	if err := stop(); err != nil {
		return err
	}
	after := store.Stats()
	q := run(duration, trivial, func(i int) string { return readerToks[i] })
	if err := ctx.Err(); err != nil {
		return err // interrupted: no figures
	}
	hostAfter := hostSpeed(runtime.NumCPU(), 300*time.Millisecond)
	if warmup > 0 {
		fmt.Fprintf(out, "warm-up (not counted), recordAction over HTTP, %d clients: %v\n", clients, w)
	}
	fmt.Fprintf(out, "recordAction over HTTP, %d clients: %v\n", clients, a)
	if commits := after.Commits - before.Commits; commits > 0 {
		fmt.Fprintf(out, "  ledger: %d group commits, %.1f appends each, %d WAL restarts\n", commits, float64(after.Appends-before.Appends)/float64(commits), after.WALRestarts-before.WALRestarts)
	}
	if syncs := after.Syncs - before.Syncs; syncs > 0 {
		in := after.SyncTime - before.SyncTime
		fmt.Fprintf(out, "  disk: %d fsyncs of the WAL, %.2f ms each on average, in progress %.0f%% of the time\n",
			syncs, float64(in.Microseconds())/1000/float64(syncs), 100*in.Seconds()/a.took.Seconds())
	}
	fmt.Fprintf(out, "trivial query over HTTP, %d clients: %v\n", clients, q)
	if a.ops > 0 && q.ops > 0 {
		fmt.Fprintf(out, "throughput ratio recordAction/trivial: %.2f\n", (float64(a.ops)/a.took.Seconds())/(float64(q.ops)/q.took.Seconds()))
	}
	fmt.Fprintf(out, "host: SHA-256 on %d threads at once, %.0f MB/s each before the measured runs, %.0f after (on a shared machine, less means the neighbours' load)\n",
		runtime.NumCPU(), hostBefore, hostAfter)
	// The figures count only answered requests; failures make them
	// another load's, so the run fails, naming the first.
	var failed []error
	for _, p := range []struct {
		name string
		phase
	}{{"recordAction warm-up", w}, {"recordAction", a}, {"trivial query", q}} {
		if p.errors > 0 {
			failed = append(failed, fmt.Errorf("%s: %d of %d requests failed, the first with %s", p.name, p.errors, p.errors+p.ops, p.firstErr))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("bench graphql (with few clients the --rate-limit, per principal and per session, may be what refuses them; 0 turns it off): %w", errors.Join(failed...))
	}
	return nil
}
