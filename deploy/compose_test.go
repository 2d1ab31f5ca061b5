package deploy

import (
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// composeFile is the compose stack, decoded.
func composeFile(t *testing.T) map[string]any {
	t.Helper()
	docs := decodeAll(t, "compose.yaml")
	if len(docs) != 1 {
		t.Fatalf("compose.yaml: %d documents, want 1", len(docs))
	}
	c, ok := docs[0].(map[string]any)
	if !ok {
		t.Fatal("compose.yaml is not a mapping")
	}
	return c
}

func isESDBImage(image string) bool {
	return (strings.Contains(image, "kurrentdb") || strings.Contains(image, "eventstore")) && !strings.Contains(image, "gencert")
}

// composeEnv is a service's environment, from either of compose's forms
// (a mapping, or a list of NAME=value), interpolated.
func composeEnv(service any) map[string]string {
	env := map[string]string{}
	switch e := at(service, "environment").(type) {
	case map[string]any:
		for k, v := range e {
			if v == nil {
				env[k] = ""
			} else {
				env[k] = interpolate(str(v))
			}
		}
	case []any:
		for _, kv := range e {
			k, v, _ := strings.Cut(str(kv), "=")
			env[k] = interpolate(v)
		}
	}
	return env
}

// esdbSetting is a KurrentDB setting from the environment, under the
// KURRENTDB_ prefix or the older EVENTSTORE_ one.
func esdbSetting(env map[string]string, name string) string {
	if v, ok := env["KURRENTDB_"+name]; ok {
		return v
	}
	return env["EVENTSTORE_"+name]
}

// composeArgs is a service's command as a list of arguments, interpolated.
func composeArgs(t *testing.T, name string, service any) []string {
	t.Helper()
	cmd := at(service, "command")
	if s, ok := cmd.(string); ok {
		t.Fatalf("service %s: command is a string (%q); use a list so arguments are not split by a shell", name, s)
	}
	var args []string
	for _, a := range strs(cmd) {
		args = append(args, interpolate(a))
	}
	return args
}

// mount is one entry of a service's volumes, short or long syntax.
type mount struct{ source, target string }

func composeMounts(service any) []mount {
	var ms []mount
	for _, v := range list(service, "volumes") {
		if s, ok := v.(string); ok {
			parts := strings.Split(s, ":")
			if len(parts) >= 2 {
				ms = append(ms, mount{parts[0], parts[1]})
			}
			continue
		}
		ms = append(ms, mount{str(v, "source"), str(v, "target")})
	}
	return ms
}

// under reports whether file lies inside a mount's target directory (or is it).
func under(file string, ms []mount) (mount, bool) {
	for _, m := range ms {
		if file == m.target || strings.HasPrefix(file, strings.TrimSuffix(m.target, "/")+"/") {
			return m, true
		}
	}
	return mount{}, false
}

func dependsOn(service any) []string {
	switch d := at(service, "depends_on").(type) {
	case []any:
		return strs(d)
	case map[string]any:
		var names []string
		for k := range d {
			names = append(names, k)
		}
		slices.Sort(names)
		return names
	}
	return nil
}

// dependsOnTransitively reports whether from depends on to, directly or
// through other services.
func dependsOnTransitively(services map[string]any, from, to string) bool {
	seen := map[string]bool{}
	var walk func(string) bool
	walk = func(s string) bool {
		if seen[s] {
			return false
		}
		seen[s] = true
		for _, d := range dependsOn(services[s]) {
			if d == to || walk(d) {
				return true
			}
		}
		return false
	}
	return walk(from)
}

func TestComposeESDBCluster(t *testing.T) {
	c := composeFile(t)
	services := mapping(c, "services")
	var nodes []string
	var gencert string
	for name, s := range services {
		image := str(s, "image")
		if isESDBImage(image) {
			nodes = append(nodes, name)
		}
		if strings.Contains(image, "gencert") {
			gencert = name
		}
	}
	slices.Sort(nodes)
	if len(nodes) != 3 {
		t.Fatalf("KurrentDB services %v, want 3", nodes)
	}
	if gencert == "" {
		t.Error("no es-gencert-cli service to make the cluster's certificates")
	}
	for _, name := range nodes {
		s := services[name]
		env := composeEnv(s)
		if got := esdbSetting(env, "CLUSTER_SIZE"); got != "3" {
			t.Errorf("%s: CLUSTER_SIZE %q, want 3", name, got)
		}
		if strings.EqualFold(esdbSetting(env, "INSECURE"), "true") {
			t.Errorf("%s: runs insecure", name)
		}
		mounts := composeMounts(s)
		for _, setting := range []string{"CERTIFICATE_FILE", "CERTIFICATE_PRIVATE_KEY_FILE", "TRUSTED_ROOT_CERTIFICATES_PATH"} {
			p := esdbSetting(env, setting)
			if p == "" {
				t.Errorf("%s: no %s", name, setting)
				continue
			}
			if _, ok := under(p, mounts); !ok {
				t.Errorf("%s: %s %s is on no volume", name, setting, p)
			}
		}
		if _, ok := under("/var/lib/kurrentdb/chunk-000000.000000", mounts); !ok {
			t.Errorf("%s: no volume for its data (/var/lib/kurrentdb)", name)
		}
		if len(strs(at(s, "healthcheck", "test"))) == 0 {
			t.Errorf("%s: no healthcheck", name)
		}
		if gencert != "" && !slices.Contains(dependsOn(s), gencert) {
			t.Errorf("%s: does not wait for %s (its certificate)", name, gencert)
		}
	}
}

func TestComposeDocket(t *testing.T) {
	c := composeFile(t)
	services := mapping(c, "services")
	docket := services["docket"]
	if docket == nil {
		t.Fatal("no docket service")
	}
	if df := str(docket, "build", "dockerfile"); df == "" {
		t.Error("docket: not built from deploy/Dockerfile")
	} else if _, err := os.Stat(filepath.Join(str(docket, "build", "context"), df)); err != nil {
		t.Errorf("docket: build: %v", err)
	}
	args := composeArgs(t, "docket", docket)
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("docket: command %q, want serve …", args)
	}
	mounts := composeMounts(docket)

	// The event store: every KurrentDB node as a seed, TLS with the CA on a volume.
	raw, ok := flagValue(args, "esdb")
	if !ok {
		t.Fatal("docket: no --esdb")
	}
	u, err := parseESDBURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	var nodes []string
	for name, s := range services {
		if isESDBImage(str(s, "image")) {
			nodes = append(nodes, name)
			if !slices.Contains(u.hosts, name) {
				t.Errorf("docket: --esdb seeds %v lack %s", u.hosts, name)
			}
			if !dependsOnTransitively(services, "docket", name) {
				t.Errorf("docket: does not wait for %s", name)
			}
		}
	}
	if u.options["tls"] != "true" {
		t.Errorf("docket: --esdb options %v, want tls=true", u.options)
	}
	if ca := u.options["tlscafile"]; ca == "" {
		t.Error("docket: --esdb has no tlsCAFile")
	} else if _, ok := under(ca, mounts); !ok {
		t.Errorf("docket: tlsCAFile %s is on no volume", ca)
	}
	if u.user == "" || u.user == "admin" {
		t.Errorf("docket: --esdb user %q, want a service user of its own (the ACL binds it, not admin)", u.user)
	}

	// The KMS: local-kms, seeded with the key docket signs with.
	endpoint, _ := flagValue(args, "kms-endpoint")
	if !strings.Contains(endpoint, "//local-kms:") {
		t.Errorf("docket: --kms-endpoint %q, want the local-kms service", endpoint)
	}
	if !dependsOnTransitively(services, "docket", "local-kms") {
		t.Error("docket: does not wait for local-kms")
	}
	keyID, _ := flagValue(args, "kms-key-id")
	kms := services["local-kms"]
	if !strings.HasPrefix(str(kms, "image"), "nsmithuk/local-kms") {
		t.Fatalf("local-kms: image %q, want nsmithuk/local-kms", str(kms, "image"))
	}
	if len(strs(at(kms, "healthcheck", "test"))) == 0 {
		t.Error("local-kms: no healthcheck")
	}
	seedPath := composeEnv(kms)["KMS_SEED_PATH"]
	m, ok := under(seedPath, composeMounts(kms))
	if seedPath == "" || !ok {
		t.Fatalf("local-kms: seed %q is not mounted", seedPath)
	}
	checkSeed(t, filepath.FromSlash(path.Join(m.source, strings.TrimPrefix(seedPath, m.target))), keyID)

	if at(docket, "read_only") != true {
		t.Error("docket: root filesystem not read_only")
	}
}

// checkSeed checks a local-kms seed file holds a P-256 signing key that
// keyID (an id or alias) names.
func checkSeed(t *testing.T, file, keyID string) {
	t.Helper()
	docs := decodeAll(t, file)
	if len(docs) != 1 {
		t.Fatalf("%s: %d documents", file, len(docs))
	}
	seed := docs[0]
	ids := map[string]bool{}
	for _, k := range list(seed, "Keys", "Asymmetric", "Ecc") {
		id := str(k, "Metadata", "KeyId")
		if u := str(k, "Metadata", "KeyUsage"); u != "SIGN_VERIFY" {
			t.Errorf("%s: key %s usage %q, want SIGN_VERIFY", file, id, u)
		}
		block, _ := pem.Decode([]byte(str(k, "PrivateKeyPem")))
		if block == nil {
			t.Errorf("%s: key %s: no PEM", file, id)
			continue
		}
		priv, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			t.Errorf("%s: key %s: %v", file, id, err)
			continue
		}
		if priv.Curve != elliptic.P256() {
			t.Errorf("%s: key %s on %s, want P-256", file, id, priv.Curve.Params().Name)
		}
		ids[id] = true
	}
	for _, a := range list(seed, "Aliases") {
		if ids[str(a, "TargetKeyId")] {
			ids[str(a, "AliasName")] = true
		}
	}
	if !ids[keyID] {
		t.Errorf("%s: no P-256 key or alias %q (docket's --kms-key-id)", file, keyID)
	}
}

// TestComposeFilesAndVolumes: every bind-mounted file is in the repository
// and every named volume is declared.
func TestComposeFilesAndVolumes(t *testing.T) {
	c := composeFile(t)
	declared := mapping(c, "volumes")
	for name, s := range mapping(c, "services") {
		for _, m := range composeMounts(s) {
			switch {
			case strings.HasPrefix(m.source, ".") || strings.HasPrefix(m.source, "/"):
				if _, err := os.Stat(m.source); err != nil {
					t.Errorf("%s: bind mount: %v", name, err)
				}
			case m.source != "":
				if _, ok := declared[m.source]; !ok {
					t.Errorf("%s: volume %s is not declared", name, m.source)
				}
			}
		}
	}
}

// TestESDBACL: the recommended default ACL lets Docket's user read and
// append to its streams but neither delete them nor rewrite their metadata
// (which would let it change their ACL, $maxAge or $tb), and the compose
// stack applies it.
func TestESDBACL(t *testing.T) {
	b, err := os.ReadFile("esdb-acl.json")
	if err != nil {
		t.Fatal(err)
	}
	var events []struct {
		EventID   string `json:"eventId"`
		EventType string `json:"eventType"`
		Data      struct {
			User   map[string]any `json:"$userStreamAcl"`
			System map[string]any `json:"$systemStreamAcl"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &events); err != nil {
		t.Fatalf("esdb-acl.json: %v", err)
	}
	if len(events) != 1 || events[0].EventType != "update-default-acl" || events[0].EventID == "" {
		t.Fatalf("esdb-acl.json: want one update-default-acl event with an eventId, got %+v", events)
	}
	acl := events[0].Data

	raw, _ := flagValue(composeArgs(t, "docket", mapping(composeFile(t), "services")["docket"]), "esdb")
	u, err := parseESDBURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	user := u.user
	for _, k := range []string{"$r", "$w"} {
		if !slices.Contains(strs(acl.User[k]), user) {
			t.Errorf("$userStreamAcl.%s %v: want %s in it", k, acl.User[k], user)
		}
	}
	for _, k := range []string{"$d", "$mw"} {
		roles := strs(acl.User[k])
		if len(roles) == 0 || slices.Contains(roles, user) || slices.Contains(roles, "$all") {
			t.Errorf("$userStreamAcl.%s %v: want only administrators, never %s", k, roles, user)
		}
	}
	for _, k := range []string{"$r", "$w", "$d", "$mr", "$mw"} {
		if roles := strs(acl.System[k]); slices.Contains(roles, user) || slices.Contains(roles, "$all") {
			t.Errorf("$systemStreamAcl.%s %v: want administrators only", k, roles)
		}
	}

	applied := false
	for _, s := range mapping(composeFile(t), "services") {
		for _, m := range composeMounts(s) {
			if filepath.Clean(m.source) == "esdb-acl.json" {
				applied = true
			}
		}
	}
	if !applied {
		t.Error("no compose service applies esdb-acl.json")
	}
}
