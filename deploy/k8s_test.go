package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// object is one Kubernetes object from deploy/k8s, with the file it is in.
type object struct {
	file string
	doc  map[string]any
}

func (o object) kind() string { return str(o.doc, "kind") }
func (o object) name() string { return str(o.doc, "metadata", "name") }

// k8sObjects is every object in deploy/k8s (the kustomization is not one).
func k8sObjects(t *testing.T) []object {
	t.Helper()
	var objs []object
	for _, f := range yamlFiles(t, "k8s") {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		for _, d := range decodeAll(t, f) {
			m, ok := d.(map[string]any)
			if !ok {
				t.Fatalf("%s: a document is not a mapping", f)
			}
			objs = append(objs, object{f, m})
		}
	}
	return objs
}

func find(objs []object, kind, name string) (object, bool) {
	for _, o := range objs {
		if o.kind() == kind && o.name() == name {
			return o, true
		}
	}
	return object{}, false
}

// dataKeys is the keys a ConfigMap or Secret holds.
func dataKeys(o object) map[string]bool {
	keys := map[string]bool{}
	for _, field := range []string{"data", "stringData", "binaryData"} {
		for k := range mapping(o.doc, field) {
			keys[k] = true
		}
	}
	return keys
}

func TestK8sObjectsAreWellFormed(t *testing.T) {
	objs := k8sObjects(t)
	if len(objs) == 0 {
		t.Fatal("no objects under k8s/")
	}
	seen := map[string]string{}
	for _, o := range objs {
		if str(o.doc, "apiVersion") == "" || o.kind() == "" || o.name() == "" {
			t.Errorf("%s: object without apiVersion, kind or metadata.name: %v", o.file, o.doc)
			continue
		}
		id := o.kind() + "/" + o.name()
		if prev, dup := seen[id]; dup {
			t.Errorf("%s: %s is also in %s", o.file, id, prev)
		}
		seen[id] = o.file
	}
}

// TestKustomization: kustomization.yaml lists every manifest but the
// example Secrets, which are clearly marked as such.
func TestKustomization(t *testing.T) {
	docs := decodeAll(t, filepath.Join("k8s", "kustomization.yaml"))
	if len(docs) != 1 || str(docs[0], "kind") != "Kustomization" {
		t.Fatal("k8s/kustomization.yaml: want one Kustomization")
	}
	resources := strs(at(docs[0], "resources"))
	for _, r := range resources {
		if _, err := os.Stat(filepath.Join("k8s", r)); err != nil {
			t.Errorf("kustomization: resource %s: %v", r, err)
		}
	}
	for _, f := range yamlFiles(t, "k8s") {
		base := filepath.Base(f)
		example := strings.Contains(base, ".example.")
		listed := slices.Contains(resources, base)
		switch {
		case base == "kustomization.yaml":
		case example && listed:
			t.Errorf("kustomization lists %s: example secrets must not be applied", base)
		case example:
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), "EXAMPLE ONLY") {
				t.Errorf("%s: not marked EXAMPLE ONLY", f)
			}
		case !listed:
			t.Errorf("kustomization does not list %s", base)
		}
	}
}

// podSpec is a workload's pod template spec.
func podSpec(o object) map[string]any { return mapping(o.doc, "spec", "template", "spec") }

func podLabels(o object) map[string]any {
	return mapping(o.doc, "spec", "template", "metadata", "labels")
}

func workloads(objs []object) []object {
	var ws []object
	for _, o := range objs {
		switch o.kind() {
		case "Deployment", "StatefulSet", "DaemonSet", "Job":
			ws = append(ws, o)
		}
	}
	return ws
}

// varRef matches Kubernetes' $(NAME) references in env values and args.
var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// TestK8sWorkloads checks every workload: non-root, probes, resources, its
// selector, and that every ConfigMap, Secret, key, claim, service account and
// $(VAR) it refers to exists.
func TestK8sWorkloads(t *testing.T) {
	objs := k8sObjects(t)
	ws := workloads(objs)
	if len(ws) == 0 {
		t.Fatal("no workloads under k8s/")
	}
	for _, w := range ws {
		id := w.kind() + "/" + w.name()
		spec := podSpec(w)
		if !subset(mapping(w.doc, "spec", "selector", "matchLabels"), podLabels(w)) || len(mapping(w.doc, "spec", "selector", "matchLabels")) == 0 {
			t.Errorf("%s: selector does not match its pod labels", id)
		}
		if sa := str(spec, "serviceAccountName"); sa != "" {
			if _, ok := find(objs, "ServiceAccount", sa); !ok {
				t.Errorf("%s: service account %s not in the manifests", id, sa)
			}
		}
		podNonRoot := at(spec, "securityContext", "runAsNonRoot") == true
		volumes := map[string]any{}
		for _, v := range list(spec, "volumes") {
			volumes[str(v, "name")] = v
			if s := str(v, "secret", "secretName"); s != "" {
				checkRef(t, objs, id, "Secret", s, itemKeys(v, "secret"))
			}
			if c := str(v, "configMap", "name"); c != "" {
				checkRef(t, objs, id, "ConfigMap", c, itemKeys(v, "configMap"))
			}
			if c := str(v, "persistentVolumeClaim", "claimName"); c != "" {
				if _, ok := find(objs, "PersistentVolumeClaim", c); !ok {
					t.Errorf("%s: claim %s not in the manifests", id, c)
				}
			}
		}
		claims := map[string]bool{}
		for _, c := range list(w.doc, "spec", "volumeClaimTemplates") {
			claims[str(c, "metadata", "name")] = true
		}
		for _, c := range list(spec, "containers") {
			cid := id + " container " + str(c, "name")
			if str(c, "image") == "" {
				t.Errorf("%s: no image", cid)
			}
			if !podNonRoot && at(c, "securityContext", "runAsNonRoot") != true {
				t.Errorf("%s: runAsNonRoot not set", cid)
			}
			if at(c, "securityContext", "allowPrivilegeEscalation") != false {
				t.Errorf("%s: allowPrivilegeEscalation not false", cid)
			}
			if !slices.Contains(strs(at(c, "securityContext", "capabilities", "drop")), "ALL") {
				t.Errorf("%s: capabilities not dropped", cid)
			}
			for _, p := range []string{"livenessProbe", "readinessProbe"} {
				if at(c, p) == nil {
					t.Errorf("%s: no %s", cid, p)
				}
			}
			if mapping(c, "resources", "requests") == nil || mapping(c, "resources", "limits") == nil {
				t.Errorf("%s: no resource requests and limits", cid)
			}
			for _, m := range list(c, "volumeMounts") {
				if n := str(m, "name"); volumes[n] == nil && !claims[n] {
					t.Errorf("%s: mounts volume %s, which the pod does not have", cid, n)
				}
			}
			defined := map[string]bool{}
			for _, ef := range list(c, "envFrom") {
				if n := str(ef, "configMapRef", "name"); n != "" {
					checkRef(t, objs, cid, "ConfigMap", n, nil)
					if o, ok := find(objs, "ConfigMap", n); ok {
						for k := range dataKeys(o) {
							defined[k] = true
						}
					}
				}
				if n := str(ef, "secretRef", "name"); n != "" {
					checkRef(t, objs, cid, "Secret", n, nil)
					if o, ok := find(objs, "Secret", n); ok {
						for k := range dataKeys(o) {
							defined[k] = true
						}
					}
				}
			}
			for _, e := range list(c, "env") {
				for _, ref := range varRef.FindAllStringSubmatch(str(e, "value"), -1) {
					if !defined[ref[1]] {
						t.Errorf("%s: env %s refers to $(%s), not defined before it", cid, str(e, "name"), ref[1])
					}
				}
				defined[str(e, "name")] = true
				if r := mapping(e, "valueFrom", "secretKeyRef"); r != nil {
					checkRef(t, objs, cid, "Secret", str(r, "name"), []string{str(r, "key")})
				}
				if r := mapping(e, "valueFrom", "configMapKeyRef"); r != nil {
					checkRef(t, objs, cid, "ConfigMap", str(r, "name"), []string{str(r, "key")})
				}
			}
			for _, a := range append(strs(at(c, "command")), strs(at(c, "args"))...) {
				for _, ref := range varRef.FindAllStringSubmatch(a, -1) {
					if !defined[ref[1]] {
						t.Errorf("%s: argument %q refers to $(%s), which is not defined", cid, a, ref[1])
					}
				}
			}
		}
	}
}

// itemKeys is the keys a secret or configMap volume projects.
func itemKeys(volume any, field string) []string {
	var keys []string
	for _, it := range list(volume, field, "items") {
		keys = append(keys, str(it, "key"))
	}
	return keys
}

// checkRef checks that a ConfigMap or Secret is in the manifests (the
// example Secrets count: they document what must be created) with the keys.
// Optional references must still be documented there.
func checkRef(t *testing.T, objs []object, who, kind, name string, keys []string) {
	t.Helper()
	o, ok := find(objs, kind, name)
	if !ok {
		t.Errorf("%s: %s %s is not in the manifests", who, kind, name)
		return
	}
	have := dataKeys(o)
	for _, k := range keys {
		if !have[k] {
			t.Errorf("%s: %s %s has no key %s", who, kind, name, k)
		}
	}
}

// TestK8sDocket: the Docket Deployment's own requirements, and the Service in
// front of it.
func TestK8sDocket(t *testing.T) {
	objs := k8sObjects(t)
	d, ok := find(objs, "Deployment", "docket")
	if !ok {
		t.Fatal("no Deployment docket")
	}
	spec := podSpec(d)
	cs := list(spec, "containers")
	if len(cs) != 1 {
		t.Fatalf("Deployment docket: %d containers, want 1", len(cs))
	}
	c := cs[0]
	if at(spec, "securityContext", "runAsNonRoot") != true && at(c, "securityContext", "runAsNonRoot") != true {
		t.Error("docket: runAsNonRoot not set")
	}
	if at(c, "securityContext", "readOnlyRootFilesystem") != true {
		t.Error("docket: root filesystem not read-only")
	}
	if got := str(c, "livenessProbe", "httpGet", "path"); got != "/healthz" {
		t.Errorf("docket: liveness probe %q, want /healthz", got)
	}
	if got := str(c, "readinessProbe", "httpGet", "path"); got != "/readyz" {
		t.Errorf("docket: readiness probe %q, want /readyz", got)
	}
	if len(list(c, "envFrom")) == 0 {
		t.Error("docket: takes no settings from a ConfigMap")
	}
	secretRefs := 0
	for _, e := range list(c, "env") {
		if at(e, "valueFrom", "secretKeyRef") != nil {
			secretRefs++
		}
		if v := str(e, "value"); strings.Contains(strings.ToLower(str(e, "name")), "password") || strings.Contains(strings.ToLower(str(e, "name")), "secret") {
			if v != "" {
				t.Errorf("docket: env %s has a literal value; take it from a Secret", str(e, "name"))
			}
		}
	}
	if secretRefs == 0 {
		t.Error("docket: takes no credentials from a Secret")
	}

	svcs := 0
	ports := map[string]bool{}
	for _, p := range list(c, "ports") {
		ports[str(p, "name")] = true
		ports[str(p, "containerPort")] = true
	}
	for _, o := range objs {
		sel := mapping(o.doc, "spec", "selector")
		if o.kind() != "Service" || len(sel) == 0 || !subset(sel, podLabels(d)) {
			continue
		}
		svcs++
		for _, p := range list(o.doc, "spec", "ports") {
			if tp := str(p, "targetPort"); tp != "" && !ports[tp] {
				t.Errorf("Service %s: targetPort %s is no port of docket", o.name(), tp)
			}
		}
	}
	if svcs == 0 {
		t.Error("no Service selects the docket pods")
	}
	// No Service selects pods that are not there.
	for _, o := range objs {
		sel := mapping(o.doc, "spec", "selector")
		if o.kind() != "Service" {
			continue
		}
		matched := false
		for _, w := range workloads(objs) {
			if subset(sel, podLabels(w)) {
				matched = true
			}
		}
		if !matched {
			t.Errorf("Service %s: selector %v matches no workload", o.name(), sel)
		}
	}
}

// TestK8sESDB: the KurrentDB StatefulSet is a three-node cluster over TLS
// behind a headless Service, and Docket connects to all three nodes.
func TestK8sESDB(t *testing.T) {
	objs := k8sObjects(t)
	var sts []object
	for _, o := range objs {
		if o.kind() == "StatefulSet" {
			sts = append(sts, o)
		}
	}
	if len(sts) != 1 {
		t.Fatalf("%d StatefulSets, want 1 (KurrentDB)", len(sts))
	}
	s := sts[0]
	if got := str(s.doc, "spec", "replicas"); got != "3" {
		t.Errorf("StatefulSet %s: replicas %s, want 3", s.name(), got)
	}
	svcName := str(s.doc, "spec", "serviceName")
	svc, ok := find(objs, "Service", svcName)
	if !ok {
		t.Fatalf("StatefulSet %s: service %q not in the manifests", s.name(), svcName)
	}
	if str(svc.doc, "spec", "clusterIP") != "None" {
		t.Errorf("Service %s: not headless", svcName)
	}
	if !subset(mapping(svc.doc, "spec", "selector"), podLabels(s)) {
		t.Errorf("Service %s: selector does not match the StatefulSet's pods", svcName)
	}
	c := list(podSpec(s), "containers")[0]
	env := map[string]string{}
	for _, e := range list(c, "env") {
		env[str(e, "name")] = str(e, "value")
	}
	if got := esdbSetting(env, "CLUSTER_SIZE"); got != "3" {
		t.Errorf("KurrentDB: CLUSTER_SIZE %q, want 3", got)
	}
	if strings.EqualFold(esdbSetting(env, "INSECURE"), "true") {
		t.Error("KurrentDB: runs insecure")
	}
	var mounts []mount
	for _, m := range list(c, "volumeMounts") {
		mounts = append(mounts, mount{str(m, "name"), str(m, "mountPath")})
	}
	volumes := map[string]any{}
	for _, v := range list(podSpec(s), "volumes") {
		volumes[str(v, "name")] = v
	}
	for _, setting := range []string{"CERTIFICATE_FILE", "CERTIFICATE_PRIVATE_KEY_FILE", "TRUSTED_ROOT_CERTIFICATES_PATH"} {
		p := esdbSetting(env, setting)
		m, ok := under(p, mounts)
		if p == "" || !ok {
			t.Errorf("KurrentDB: %s %q is on no volume", setting, p)
			continue
		}
		if str(volumes[m.source], "secret", "secretName") == "" {
			t.Errorf("KurrentDB: %s comes from volume %s, which is not a Secret", setting, m.source)
		}
	}
	if len(list(s.doc, "spec", "volumeClaimTemplates")) == 0 {
		t.Error("KurrentDB: no persistent volume claim template")
	}

	// Docket's seeds are the three pods, by the names on their certificate.
	cm, ok := find(objs, "ConfigMap", "docket-config")
	if !ok {
		t.Fatal("no ConfigMap docket-config")
	}
	u, err := parseESDBURL("esdb://" + str(cm.doc, "data", "ESDB_ENDPOINTS") + "?" + str(cm.doc, "data", "ESDB_OPTIONS"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		want := s.name() + "-" + string(rune('0'+i)) + "." + svcName + "."
		if !slices.ContainsFunc(u.hosts, func(h string) bool { return strings.HasPrefix(h, want) }) {
			t.Errorf("docket-config: ESDB_ENDPOINTS %v lack %s…", u.hosts, want)
		}
	}
	if u.options["tls"] != "true" || u.options["tlscafile"] == "" {
		t.Errorf("docket-config: ESDB_OPTIONS %v, want tls=true and a tlsCAFile", u.options)
	}
	d, _ := find(objs, "Deployment", "docket")
	var dmounts []mount
	for _, m := range list(list(podSpec(d), "containers")[0], "volumeMounts") {
		dmounts = append(dmounts, mount{str(m, "name"), str(m, "mountPath")})
	}
	if _, ok := under(u.options["tlscafile"], dmounts); !ok {
		t.Errorf("docket: tlsCAFile %s is on no volume", u.options["tlscafile"])
	}

	// The ACL in esdb-acl.json names the user Docket connects as.
	secret, _ := find(objs, "Secret", "docket-secrets")
	user := str(secret.doc, "stringData", "esdb-username")
	acl, err := os.ReadFile("esdb-acl.json")
	if err != nil {
		t.Fatal(err)
	}
	if user == "" || !strings.Contains(string(acl), `"`+user+`"`) {
		t.Errorf("docket-secrets: esdb-username %q is not the user esdb-acl.json grants", user)
	}
}
