// Package anchoring anchors signed checkpoints in Bitcoin through
// OpenTimestamps calendars, and keeps the proofs.
//
// Every interval, when the log has a signed checkpoint newer than the last
// one anchored, the SHA-256 of that checkpoint's signed note is submitted to
// the configured calendars (at least two). The pending proof is stored next
// to a copy of the note; calendars that failed are retried on the next
// round; on a schedule, pending proofs are upgraded until each holds a
// Bitcoin attestation. Nothing here blocks the ledger: a round that cannot
// reach any calendar is logged, shown in Status, and tried again later.
//
// The proofs live in a directory (by default <data>/anchors), one anchor per
// checkpoint size:
//
//	checkpoint-<size>.note   the signed checkpoint note, as stored in the ledger
//	checkpoint-<size>.ots    its OpenTimestamps proof (sha256 of the .note file)
//	checkpoint-<size>.json   what Docket knows of the anchor (Anchor)
//
// so anyone can check one with `docket verify ots checkpoint-N.ots --file
// checkpoint-N.note` or the reference client.
package anchoring

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/renameio/v2"

	"github.com/evidence-parity/docket/anchors/ots"
	"github.com/evidence-parity/docket/ledger"
)

// DefaultCalendars are the public OpenTimestamps calendars the reference
// client uses.
var DefaultCalendars = []string{
	"https://a.pool.opentimestamps.org",
	"https://b.pool.opentimestamps.org",
	"https://a.pool.eternitywall.com",
	"https://ots.btc.catallaxy.com",
}

// DefaultUpgradeCalendars are the calendars proofs may be upgraded from
// beside the configured ones: the reference client's whitelist. Pools
// (DefaultCalendars) answer with pending attestations naming the calendar
// behind them, which is where the upgrade comes from.
var DefaultUpgradeCalendars = []string{
	"https://*.calendar.opentimestamps.org",
	"https://*.calendar.eternitywall.com",
	"https://*.calendar.catallaxy.com",
}

// Checkpoints is what the anchorer needs from a ledger.
type Checkpoints interface {
	// LatestCheckpoint returns the signed note of the largest checkpoint,
	// or found == false when there is none. It MUST NOT block on signing.
	LatestCheckpoint(ctx context.Context) (note []byte, found bool, err error)
}

// Config configures an Anchorer. Zero fields take the defaults given.
type Config struct {
	// Dir holds the proofs (required).
	Dir string
	// Calendars are the calendar URLs submitted to (default
	// DefaultCalendars); at least two.
	Calendars []string
	// UpgradeCalendars may be asked for upgrades: exact URLs or
	// "https://*.domain" patterns (default DefaultUpgradeCalendars). The
	// configured Calendars are always allowed too.
	UpgradeCalendars []string
	// Client talks to the calendars (default: an ots.Client allowing only
	// https).
	Client *ots.Client
	// Interval is the time between anchoring rounds (default 10 minutes).
	Interval time.Duration
	// UpgradeInterval is the time between upgrade rounds (default 10
	// minutes).
	UpgradeInterval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives round failures (default slog.Default()).
	Logger *slog.Logger
}

// Anchor is what Docket knows of one checkpoint's anchoring; it is stored as
// checkpoint-<size>.json beside the proof.
type Anchor struct {
	Size       uint64 `json:"size"`
	NoteSHA256 string `json:"noteSha256"`
	// SubmittedAt is when the first calendar accepted the checkpoint.
	SubmittedAt time.Time `json:"submittedAt"`
	// Calendars accepted the submission; Missing are those still to be
	// retried, with the last error each gave.
	Calendars []string          `json:"calendars"`
	Missing   map[string]string `json:"missing,omitempty"`
	// UpgradedAt is the last upgrade attempt.
	UpgradedAt time.Time `json:"upgradedAt,omitzero"`
	// Bitcoin lists the block heights the proof is attested in (not
	// verified here: that needs the block headers, see ots.Verify).
	Bitcoin []uint64 `json:"bitcoin,omitempty"`
	// CompletedAt is when the first Bitcoin attestation arrived.
	CompletedAt time.Time `json:"completedAt,omitzero"`
	// LastError is the last round's failure for this anchor, if any.
	LastError string `json:"lastError,omitempty"`
}

// Complete reports whether the proof holds a Bitcoin attestation.
func (a Anchor) Complete() bool { return len(a.Bitcoin) > 0 }

// Anchorer runs the anchoring rounds for one ledger.
type Anchorer struct {
	log Checkpoints
	cfg Config

	round   sync.Mutex // serialises rounds in this process
	mu      sync.Mutex // guards lastErr
	lastErr error
}

// New returns an Anchorer; it creates cfg.Dir if needed.
func New(log Checkpoints, cfg Config) (*Anchorer, error) {
	if cfg.Dir == "" {
		return nil, errors.New("anchoring: no directory")
	}
	if len(cfg.Calendars) == 0 {
		cfg.Calendars = DefaultCalendars
	}
	if cfg.Client == nil {
		cfg.Client = &ots.Client{}
	}
	if len(cfg.Calendars) < 2 {
		return nil, fmt.Errorf("anchoring: %d calendar configured, want at least two (a single calendar is a single party to trust)", len(cfg.Calendars))
	}
	for _, c := range cfg.Calendars {
		if err := ots.CheckCalendar(c, cfg.Client.AllowHTTP); err != nil {
			return nil, fmt.Errorf("anchoring: %w", err)
		}
	}
	if len(cfg.UpgradeCalendars) == 0 {
		cfg.UpgradeCalendars = DefaultUpgradeCalendars
	}
	cfg.UpgradeCalendars = append(slices.Clone(cfg.UpgradeCalendars), cfg.Calendars...)
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Minute
	}
	if cfg.UpgradeInterval <= 0 {
		cfg.UpgradeInterval = 10 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("anchoring: %w", err)
	}
	return &Anchorer{log: log, cfg: cfg}, nil
}

// Dir is the directory the proofs are kept in.
func (a *Anchorer) Dir() string { return a.cfg.Dir }

// Calendars returns the configured calendars.
func (a *Anchorer) Calendars() []string { return slices.Clone(a.cfg.Calendars) }

// Err returns the outcome of the latest round: nil when it reached at least
// one calendar (or had nothing to do).
func (a *Anchorer) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastErr
}

func (a *Anchorer) setErr(err error) {
	a.mu.Lock()
	a.lastErr = err
	a.mu.Unlock()
}

func (a *Anchorer) path(size uint64, ext string) string {
	return filepath.Join(a.cfg.Dir, fmt.Sprintf("checkpoint-%012d.%s", size, ext))
}

// lock takes the directory's lock, so that a CLI command and a server
// working on the same proofs take turns.
func (a *Anchorer) lock() (func(), error) {
	a.round.Lock()
	f, err := os.OpenFile(filepath.Join(a.cfg.Dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		a.round.Unlock()
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		a.round.Unlock()
		return nil, err
	}
	return func() { f.Close(); a.round.Unlock() }, nil
}

// ErrNoCheckpoint is returned by AnchorNow when the ledger has no signed
// checkpoint yet.
var ErrNoCheckpoint = errors.New("no signed checkpoint to anchor")

// AnchorNow submits the latest checkpoint to the calendars if it is not
// anchored yet, and retries calendars a previous submission missed. It
// returns the latest checkpoint's anchor. It fails only when no calendar at
// all accepted the checkpoint.
func (a *Anchorer) AnchorNow(ctx context.Context) (Anchor, error) {
	unlock, err := a.lock()
	if err != nil {
		return Anchor{}, err
	}
	defer unlock()
	anc, err := a.anchorLatest(ctx)
	if errors.Is(err, ErrNoCheckpoint) {
		a.setErr(nil)
	} else {
		a.setErr(err)
	}
	return anc, err
}

func (a *Anchorer) anchorLatest(ctx context.Context) (Anchor, error) {
	note, found, err := a.log.LatestCheckpoint(ctx)
	if err != nil {
		return Anchor{}, err
	}
	if !found {
		return Anchor{}, ErrNoCheckpoint
	}
	cp, err := ledger.CheckpointBody(note)
	if err != nil {
		return Anchor{}, err
	}
	digest := sha256.Sum256(note)
	anc, proof, err := a.load(cp.Size)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return a.submit(ctx, cp.Size, note, digest)
	case err != nil:
		return Anchor{}, err
	case anc.NoteSHA256 != hex.EncodeToString(digest[:]):
		return Anchor{}, fmt.Errorf("anchoring: the stored note for checkpoint %d differs from the ledger's", cp.Size)
	case len(anc.Missing) == 0:
		return anc, nil
	}
	// Retry the calendars the first submission missed, on the same
	// commitment, so that the proof keeps one nonce.
	commitment, err := commitmentOf(proof)
	if err != nil {
		return Anchor{}, err
	}
	missing := slices.Sorted(maps.Keys(anc.Missing))
	failed := a.cfg.Client.SubmitAll(ctx, commitment, missing)
	for _, c := range missing {
		if e, ok := failed[c]; ok {
			anc.Missing[c] = e.Error()
			continue
		}
		delete(anc.Missing, c)
		anc.Calendars = append(anc.Calendars, c)
	}
	if err := a.store(anc, nil, proof); err != nil {
		return Anchor{}, err
	}
	return anc, nil
}

func (a *Anchorer) submit(ctx context.Context, size uint64, note []byte, digest [32]byte) (Anchor, error) {
	proof, failed := a.cfg.Client.Stamp(ctx, digest, a.cfg.Calendars)
	anc := Anchor{Size: size, NoteSHA256: hex.EncodeToString(digest[:]), Missing: map[string]string{}}
	for _, c := range a.cfg.Calendars {
		if e, ok := failed[c]; ok {
			anc.Missing[c] = e.Error()
		} else {
			anc.Calendars = append(anc.Calendars, c)
		}
	}
	if len(anc.Calendars) == 0 {
		var errs []error
		for _, c := range a.cfg.Calendars {
			errs = append(errs, failed[c])
		}
		return Anchor{}, fmt.Errorf("anchor checkpoint %d: no calendar accepted it: %w", size, errors.Join(errs...))
	}
	anc.SubmittedAt = a.cfg.Now().UTC()
	return anc, a.store(anc, note, proof)
}

// commitmentOf finds the node Stamp submitted: digest → append(nonce) →
// sha256.
func commitmentOf(f *ots.File) (*ots.Timestamp, error) {
	t := f.Timestamp
	for _, tag := range []byte{ots.TagAppend, ots.TagSHA256} {
		if len(t.Branches) == 0 || t.Branches[0].Attestation != nil || t.Branches[0].Op.Tag != tag {
			return nil, errors.New("anchoring: proof does not start with Docket's nonce commitment")
		}
		t = t.Branches[0].Next
	}
	return t, nil
}

// upgradeRound bounds one upgrade round, so calendars that hang cannot
// hold the directory (and the next anchoring round) for long.
const upgradeRound = 2 * time.Minute

// Upgrade asks the calendars for the Bitcoin attestations of every anchor
// not yet complete, in parallel, and returns the anchors it looked at. An
// anchor whose files cannot be read is skipped and logged; the others go on.
func (a *Anchorer) Upgrade(ctx context.Context) ([]Anchor, error) {
	unlock, err := a.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	all, err := a.list()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, upgradeRound)
	defer cancel()
	type work struct {
		anc   Anchor
		proof *ots.File
	}
	var todo []*work
	for _, anc := range all {
		if anc.Complete() {
			continue
		}
		anc, proof, err := a.load(anc.Size)
		if err != nil {
			a.cfg.Logger.Error("anchor not upgraded: its files cannot be read", "checkpoint", anc.Size, "err", err)
			continue
		}
		todo = append(todo, &work{anc, proof})
	}
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, w := range todo {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			res := a.cfg.Client.Upgrade(ctx, w.proof.Timestamp, a.cfg.UpgradeCalendars)
			w.anc.UpgradedAt = a.cfg.Now().UTC()
			w.anc.LastError = ""
			if len(res.Errors) > 0 {
				var msgs []string
				for _, c := range slices.Sorted(maps.Keys(res.Errors)) {
					msgs = append(msgs, res.Errors[c].Error())
				}
				w.anc.LastError = strings.Join(msgs, "; ")
			}
			w.anc.Bitcoin = bitcoinHeights(w.proof)
			if w.anc.Complete() && w.anc.CompletedAt.IsZero() {
				w.anc.CompletedAt = w.anc.UpgradedAt
			}
		})
	}
	wg.Wait()
	var out []Anchor
	for _, w := range todo {
		if err := a.store(w.anc, nil, w.proof); err != nil {
			return out, err
		}
		out = append(out, w.anc)
	}
	return out, nil
}

func bitcoinHeights(f *ots.File) []uint64 {
	var hs []uint64
	for _, at := range f.Timestamp.Attestations() {
		if at.Attestation.Kind == ots.Bitcoin && !slices.Contains(hs, at.Attestation.Height) {
			hs = append(hs, at.Attestation.Height)
		}
	}
	slices.Sort(hs)
	return hs
}

// Status lists every anchor, oldest checkpoint first.
func (a *Anchorer) Status() ([]Anchor, error) { return List(a.cfg.Dir) }

func (a *Anchorer) list() ([]Anchor, error) { return List(a.cfg.Dir) }

// List reads the anchors stored in dir, oldest checkpoint first.
func List(dir string) ([]Anchor, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "checkpoint-*.json"))
	if err != nil {
		return nil, err
	}
	var out []Anchor
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var anc Anchor
		if err := json.Unmarshal(b, &anc); err != nil {
			return nil, fmt.Errorf("anchoring: %s: %w", p, err)
		}
		out = append(out, anc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Size < out[j].Size })
	return out, nil
}

// Latest reads the newest anchor in dir and the newest complete one (nil
// when there is none), reading only as many files as it takes: status pages
// call it on every request.
func Latest(dir string) (latest *Anchor, complete *Anchor, err error) {
	paths, err := filepath.Glob(filepath.Join(dir, "checkpoint-*.json"))
	if err != nil {
		return nil, nil, err
	}
	slices.Sort(paths) // zero-padded sizes: name order is size order
	for i := len(paths) - 1; i >= 0; i-- {
		b, err := os.ReadFile(paths[i])
		if err != nil {
			return nil, nil, err
		}
		var anc Anchor
		if err := json.Unmarshal(b, &anc); err != nil {
			return nil, nil, fmt.Errorf("anchoring: %s: %w", paths[i], err)
		}
		if latest == nil {
			latest = &anc
		}
		if anc.Complete() {
			return latest, &anc, nil
		}
	}
	return latest, nil, nil
}

// Proof reads the stored note and proof of the anchor of checkpoint size.
func Proof(dir string, size uint64) (note []byte, proof *ots.File, err error) {
	a := &Anchorer{cfg: Config{Dir: dir}}
	if note, err = os.ReadFile(a.path(size, "note")); err != nil {
		return nil, nil, err
	}
	_, proof, err = a.load(size)
	return note, proof, err
}

func (a *Anchorer) load(size uint64) (Anchor, *ots.File, error) {
	b, err := os.ReadFile(a.path(size, "json"))
	if err != nil {
		return Anchor{}, nil, err
	}
	var anc Anchor
	if err := json.Unmarshal(b, &anc); err != nil {
		return Anchor{}, nil, fmt.Errorf("anchoring: checkpoint %d: %w", size, err)
	}
	if anc.Missing == nil {
		anc.Missing = map[string]string{}
	}
	raw, err := os.ReadFile(a.path(size, "ots"))
	if err != nil {
		return Anchor{}, nil, err
	}
	proof, err := ots.Parse(raw)
	if err != nil {
		return Anchor{}, nil, fmt.Errorf("anchoring: checkpoint %d proof: %w", size, err)
	}
	return anc, proof, nil
}

// store writes an anchor's files, each atomically; note is written only the
// first time (nil afterwards). The .json is written last, so an anchor is
// listed only once its proof is in place.
func (a *Anchorer) store(anc Anchor, note []byte, proof *ots.File) error {
	raw, err := proof.Serialize()
	if err != nil {
		return err
	}
	meta, err := json.MarshalIndent(anc, "", "  ")
	if err != nil {
		return err
	}
	if note != nil {
		if err := writeAtomic(a.path(anc.Size, "note"), note); err != nil {
			return err
		}
	}
	if err := writeAtomic(a.path(anc.Size, "ots"), raw); err != nil {
		return err
	}
	return writeAtomic(a.path(anc.Size, "json"), append(meta, '\n'))
}

// writeAtomic replaces path with b whole or not at all (renameio: a
// synced temporary file renamed over it), then syncs the directory, since
// the rename is durable only once the directory is.
func writeAtomic(path string, b []byte) error {
	if err := renameio.WriteFile(path, b, 0o644, renameio.WithTempDir(filepath.Dir(path)), renameio.WithStaticPermissions(0o644)); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Run anchors every Interval and upgrades every UpgradeInterval until ctx
// ends. Failures are logged and kept for Err; the next round tries again.
func (a *Anchorer) Run(ctx context.Context) {
	anchorT := time.NewTicker(a.cfg.Interval)
	defer anchorT.Stop()
	upgradeT := time.NewTicker(a.cfg.UpgradeInterval)
	defer upgradeT.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-anchorT.C:
			if _, err := a.AnchorNow(ctx); err != nil && !errors.Is(err, ErrNoCheckpoint) && ctx.Err() == nil {
				a.cfg.Logger.Error("anchoring round failed; retrying next round", "err", err)
			}
		case <-upgradeT.C:
			if _, err := a.Upgrade(ctx); err != nil && ctx.Err() == nil {
				a.cfg.Logger.Error("anchor upgrade failed", "err", err)
			}
		}
	}
}
