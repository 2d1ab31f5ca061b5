package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestEveryYAMLParses decodes every YAML file under deploy/, every document
// of it, so a stray tab or a broken anchor fails here rather than at
// `docker compose up` or `kubectl apply`.
func TestEveryYAMLParses(t *testing.T) {
	files := yamlFiles(t, ".")
	if len(files) == 0 {
		t.Fatal("no YAML files under deploy/")
	}
	for _, f := range files {
		if docs := decodeAll(t, f); len(docs) == 0 {
			t.Errorf("%s: no YAML documents", f)
		}
	}
}

// yamlFiles lists the .yaml and .yml files under dir, sorted.
func yamlFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ext := filepath.Ext(path); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}

// decodeAll decodes every non-empty document of a YAML file.
func decodeAll(t *testing.T, path string) []any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []any
	for i := 0; ; i++ {
		var doc any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", path, i, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
}

// at walks nested mappings by key; nil where any step is missing.
func at(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func str(v any, keys ...string) string {
	switch x := at(v, keys...).(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		return fmt.Sprint(x)
	}
}

func mapping(v any, keys ...string) map[string]any {
	m, _ := at(v, keys...).(map[string]any)
	return m
}

func list(v any, keys ...string) []any {
	l, _ := at(v, keys...).([]any)
	return l
}

// strs is a YAML string or list of strings as a slice.
func strs(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return nil
}

// subset reports whether every key of sub has the same value in super.
func subset(sub, super map[string]any) bool {
	for k, v := range sub {
		if fmt.Sprint(super[k]) != fmt.Sprint(v) {
			return false
		}
	}
	return true
}

// flagName is the name of a --flag or --flag=value argument, "" for others.
func flagName(arg string) string {
	if !strings.HasPrefix(arg, "--") {
		return ""
	}
	name, _, _ := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
	return name
}

// flagValue is the value of --name in args (either --name=value or
// --name value), and whether it is there.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == "--"+name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// esdbURL is a KurrentDB connection string taken apart: esdb:// or
// kurrentdb://, optional user:password@, comma-separated host:port seeds
// and query options. (net/url does not take several hosts.)
type esdbURL struct {
	scheme, user string
	hosts        []string
	options      map[string]string
}

func parseESDBURL(s string) (esdbURL, error) {
	var u esdbURL
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || (scheme != "esdb" && scheme != "esdb+discover" && scheme != "kurrentdb" && scheme != "kurrentdb+discover") {
		return u, fmt.Errorf("%q: want an esdb:// or kurrentdb:// connection string", s)
	}
	u.scheme = scheme
	rest, query, _ := strings.Cut(rest, "?")
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		u.user, _, _ = strings.Cut(rest[:i], ":")
		rest = rest[i+1:]
	}
	rest = strings.TrimSuffix(rest, "/")
	for h := range strings.SplitSeq(rest, ",") {
		host, port, ok := strings.Cut(h, ":")
		if !ok || host == "" || port == "" {
			return u, fmt.Errorf("%q: seed %q is not host:port", s, h)
		}
		u.hosts = append(u.hosts, host)
	}
	u.options = map[string]string{}
	for kv := range strings.SplitSeq(query, "&") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			u.options[strings.ToLower(k)] = v
		}
	}
	return u, nil
}

// composeVar matches compose interpolation: ${NAME}, ${NAME:-default},
// ${NAME-default}.
var composeVar = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?::?-([^}]*))?\}`)

// interpolate expands compose variables to their defaults (the test sets
// none) and unescapes $$.
func interpolate(s string) string {
	s = composeVar.ReplaceAllString(s, "$2")
	return strings.ReplaceAll(s, "$$", "$")
}
