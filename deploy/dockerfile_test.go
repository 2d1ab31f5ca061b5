package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, …
	args string
}

// stage is one build stage: its FROM line and what follows.
type stage struct {
	from, name string
	body       []instruction
}

func parseDockerfile(t *testing.T, path string) []stage {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		stages []stage
		line   strings.Builder
	)
	flush := func() {
		text := strings.TrimSpace(line.String())
		line.Reset()
		if text == "" {
			return
		}
		cmd, args, _ := strings.Cut(text, " ")
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			fields := strings.Fields(in.args)
			var s stage
			for i := 0; i < len(fields); i++ {
				switch {
				case strings.HasPrefix(fields[i], "--"):
				case strings.EqualFold(fields[i], "AS") && i+1 < len(fields):
					s.name = fields[i+1]
					i++
				case s.from == "":
					s.from = fields[i]
				}
			}
			stages = append(stages, s)
			return
		}
		if len(stages) > 0 {
			stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
		}
	}
	for raw := range strings.Lines(string(b)) {
		l := strings.TrimRight(raw, "\r\n")
		if strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		if cont, ok := strings.CutSuffix(l, "\\"); ok {
			line.WriteString(cont + " ")
			continue
		}
		line.WriteString(l)
		flush()
	}
	flush()
	return stages
}

// execForm is a JSON-array (exec form) ENTRYPOINT or CMD.
func execForm(t *testing.T, in instruction) []string {
	t.Helper()
	var args []string
	if err := json.Unmarshal([]byte(in.args), &args); err != nil {
		t.Fatalf("%s %s: not exec form (a JSON array): %v", in.cmd, in.args, err)
	}
	return args
}

func last(s stage, cmd string) (instruction, bool) {
	for i := len(s.body) - 1; i >= 0; i-- {
		if s.body[i].cmd == cmd {
			return s.body[i], true
		}
	}
	return instruction{}, false
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, "Dockerfile")
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a final one", len(stages))
	}
	final := stages[len(stages)-1]
	if !strings.HasPrefix(final.from, "gcr.io/distroless/static") && final.from != "scratch" {
		t.Errorf("final stage FROM %s, want distroless static or scratch", final.from)
	}
	user, ok := last(final, "USER")
	if name, _, _ := strings.Cut(user.args, ":"); !ok || name == "" || name == "root" || name == "0" {
		t.Errorf("final stage USER %q, want a non-root user", user.args)
	}
	if in, ok := last(final, "EXPOSE"); !ok || !slices.Contains(strings.Fields(in.args), "8080") {
		t.Error("final stage does not EXPOSE 8080")
	}
	entry, ok := last(final, "ENTRYPOINT")
	if !ok || filepath.Base(execForm(t, entry)[0]) != "docket" {
		t.Errorf("ENTRYPOINT %q, want docket", entry.args)
	}
	cmd, ok := last(final, "CMD")
	if !ok {
		t.Fatal("no CMD")
	}
	args := execForm(t, cmd)
	if args[0] != "serve" {
		t.Errorf("CMD %q, want serve …", args)
	}
	if v, _ := flagValue(args, "listen"); v != "0.0.0.0:8080" {
		t.Errorf("CMD --listen %q, want 0.0.0.0:8080", v)
	}
	if v, _ := flagValue(args, "data"); v != "/var/lib/docket" {
		t.Errorf("CMD --data %q, want /var/lib/docket", v)
	}

	// The binary is built without cgo in a stage the final one copies from.
	var built bool
	for _, s := range stages[:len(stages)-1] {
		cgoOff := false
		for _, in := range s.body {
			if in.cmd == "ENV" && strings.Contains(in.args, "CGO_ENABLED=0") {
				cgoOff = true
			}
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") && strings.Contains(in.args, "./cmd/docket") {
				if !cgoOff && !strings.Contains(in.args, "CGO_ENABLED=0") {
					t.Errorf("stage %s builds docket with cgo possibly on: %s", s.name, in.args)
				}
				built = true
				copied := false
				for _, fin := range final.body {
					if fin.cmd == "COPY" && s.name != "" && strings.Contains(fin.args, "--from="+s.name) {
						copied = true
					}
				}
				if !copied {
					t.Errorf("the final stage copies nothing from %s", s.name)
				}
			}
		}
	}
	if !built {
		t.Error("no stage runs go build ./cmd/docket")
	}

	ignore, err := os.ReadFile("Dockerfile.dockerignore")
	if err != nil {
		t.Fatalf("no ignore file for the build context: %v", err)
	}
	for _, want := range []string{".git", "docket-data/", "bin/"} {
		if !slices.Contains(strings.Fields(string(ignore)), want) {
			t.Errorf("Dockerfile.dockerignore does not leave out %s", want)
		}
	}
}

// TestPureGoSQLite: the static build needs a cgo-free SQLite driver.
func TestPureGoSQLite(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mf, err := modfile.ParseLax("go.mod", b, nil)
	if err != nil {
		t.Fatal(err)
	}
	var pure bool
	for _, r := range mf.Require {
		switch r.Mod.Path {
		case "modernc.org/sqlite":
			pure = true
		case "github.com/mattn/go-sqlite3":
			t.Errorf("go.mod requires %s, which needs cgo; the image is built with CGO_ENABLED=0", r.Mod.Path)
		}
	}
	if !pure {
		t.Error("go.mod does not require modernc.org/sqlite")
	}
}
