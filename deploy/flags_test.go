package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// invocation is one way the deployment files run docket: its arguments
// (after the entrypoint) and the environment they give it.
type invocation struct {
	where string
	args  []string
	env   []string // variable names
}

// invocations collects every docket run in the Dockerfile, compose.yaml and
// the Kubernetes workloads.
func invocations(t *testing.T) []invocation {
	t.Helper()
	var ins []invocation

	stages := parseDockerfile(t, "Dockerfile")
	if cmd, ok := last(stages[len(stages)-1], "CMD"); ok {
		ins = append(ins, invocation{where: "Dockerfile CMD", args: execForm(t, cmd)})
	}

	services := mapping(composeFile(t), "services")
	docketImage := str(services["docket"], "image")
	for name, s := range services {
		if at(s, "build") == nil && (docketImage == "" || str(s, "image") != docketImage) {
			continue
		}
		var env []string
		for k := range composeEnv(s) {
			env = append(env, k)
		}
		ins = append(ins, invocation{where: "compose service " + name, args: composeArgs(t, name, s), env: env})
	}

	objs := k8sObjects(t)
	for _, w := range workloads(objs) {
		for _, c := range list(podSpec(w), "containers") {
			if !strings.Contains(str(c, "image"), "/docket") {
				continue
			}
			in := invocation{where: w.kind() + "/" + w.name() + " container " + str(c, "name"), args: strs(at(c, "args"))}
			for _, ef := range list(c, "envFrom") {
				for _, kind := range []string{"ConfigMap", "Secret"} {
					field := map[string]string{"ConfigMap": "configMapRef", "Secret": "secretRef"}[kind]
					if o, ok := find(objs, kind, str(ef, field, "name")); ok {
						for k := range dataKeys(o) {
							in.env = append(in.env, str(ef, "prefix")+k)
						}
					}
				}
			}
			for _, e := range list(c, "env") {
				in.env = append(in.env, str(e, "name"))
			}
			ins = append(ins, in)
		}
	}
	return ins
}

// TestFlagsAreReal builds docket and checks that every flag the deployment
// files pass, and every DOCKET_* variable they set, is one the subcommand
// they run lists in its --help.
func TestFlagsAreReal(t *testing.T) {
	ins := invocations(t)
	if len(ins) < 3 {
		t.Fatalf("found %d docket invocations; want the Dockerfile's, compose's and Kubernetes'", len(ins))
	}
	bin := buildDocket(t)
	for _, in := range ins {
		var sub []string
		for _, a := range in.args {
			if strings.HasPrefix(a, "-") {
				break
			}
			sub = append(sub, a)
		}
		if len(sub) == 0 {
			t.Errorf("%s: no subcommand in %q", in.where, in.args)
			continue
		}
		flags, envs := help(t, bin, sub)
		for _, a := range in.args {
			if name := flagName(a); name != "" && !flags[name] {
				t.Errorf("%s: docket %s has no flag --%s", in.where, strings.Join(sub, " "), name)
			}
		}
		for _, e := range in.env {
			if strings.HasPrefix(e, "DOCKET_") && !envs[e] {
				t.Errorf("%s: docket %s reads no %s", in.where, strings.Join(sub, " "), e)
			}
		}
	}
}

var (
	helpFlag = regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z0-9][a-z0-9-]*)`)
	helpEnv  = regexp.MustCompile(`\(env (DOCKET_[A-Z0-9_]+)\)`)
)

// help runs `docket SUB… --help` and returns the flags and DOCKET_*
// variables it lists (global flags included).
func help(t *testing.T, bin string, sub []string) (flags, envs map[string]bool) {
	t.Helper()
	cmd := exec.Command(bin, append(slices.Clone(sub), "--help")...)
	cmd.Env = []string{"HOME=" + t.TempDir()} // no DOCKET_* from the caller
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("docket %s --help: %v\n%s", strings.Join(sub, " "), err, out.String())
	}
	if !strings.Contains(out.String(), "docket "+strings.Join(sub, " ")) {
		t.Fatalf("docket %s --help does not describe that subcommand:\n%s", strings.Join(sub, " "), out.String())
	}
	flags, envs = map[string]bool{}, map[string]bool{}
	for _, m := range helpFlag.FindAllStringSubmatch(out.String(), -1) {
		flags[m[1]] = true
	}
	for _, m := range helpEnv.FindAllStringSubmatch(out.String(), -1) {
		envs[m[1]] = true
	}
	return flags, envs
}

// buildDocket builds ./cmd/docket as the image does (CGO_ENABLED=0) into a
// temporary directory.
func buildDocket(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "docket")
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/docket")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/docket with CGO_ENABLED=0: %v\n%s", err, out)
	}
	return bin
}
