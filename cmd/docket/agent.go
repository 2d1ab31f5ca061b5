package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/evidence-parity/docket/graph/client"
)

// agentFlags are the connection settings every agent command takes.
type agentFlags struct {
	url, agentKey, credential, credFile string
}

func addAgentFlags(c *cobra.Command) *agentFlags {
	f := &agentFlags{}
	c.PersistentFlags().StringVar(&f.url, "url", envOr("DOCKET_URL", "http://127.0.0.1:8080"), "the Docket server (env DOCKET_URL)")
	c.PersistentFlags().StringVar(&f.agentKey, "agent-key", os.Getenv("DOCKET_AGENT_KEY"), "the agent's key, for plans, sessions and promotion (env DOCKET_AGENT_KEY)")
	c.PersistentFlags().StringVar(&f.credential, "credential", os.Getenv("DOCKET_CREDENTIAL"), "the session credential (env DOCKET_CREDENTIAL; else read from --credential-file)")
	c.PersistentFlags().StringVar(&f.credFile, "credential-file", envOr("DOCKET_CREDENTIAL_FILE", filepath.Join(".docket", "credential")), "where session start keeps the credential (mode 0600) (env DOCKET_CREDENTIAL_FILE)")
	return f
}

func (f *agentFlags) asAgent() (*client.Client, error) {
	if f.agentKey == "" {
		return nil, usageErr("no agent key: set DOCKET_AGENT_KEY or --agent-key")
	}
	return &client.Client{URL: f.url, Token: f.agentKey}, nil
}

// credPath is the credential file, relative paths taken from the root of
// the repository the command runs in, where the hooks look for it.
func (f *agentFlags) credPath(ctx context.Context) string {
	wd, err := os.Getwd()
	if err != nil {
		return f.credFile
	}
	return client.CredentialPath(ctx, wd, f.credFile)
}

// session reads the session credential: the flag or env first, else the
// credential file.
func (f *agentFlags) session(ctx context.Context) (*client.Client, error) {
	cred := f.credential
	if cred == "" {
		b, err := os.ReadFile(f.credPath(ctx))
		if err != nil {
			return nil, usageErr("no session credential: set DOCKET_CREDENTIAL, or run docket agent session start (%v)", err)
		}
		cred = strings.TrimSpace(string(b))
	}
	return &client.Client{URL: f.url, Token: cred}, nil
}

// apiErr turns a server refusal into the CLI's exit codes: 1, with the
// server's code and message.
func apiErr(err error) error {
	var ce *client.Error
	if errors.As(err, &ce) {
		return failed(fmt.Errorf("%s: %s", ce.Code, ce.Message))
	}
	return failed(err)
}

// PlanFile is the plan file format of `docket agent plan submit`.
type PlanFile struct {
	RequestedBy  string     `yaml:"requestedBy"`
	Objective    string     `yaml:"objective"`
	Method       string     `yaml:"method"`
	Scope        []ScopeYML `yaml:"scope"`
	TestApproach string     `yaml:"testApproach"`
	BackoutPath  string     `yaml:"backoutPath"`
	Environment  string     `yaml:"environment"`
	Risk         string     `yaml:"risk"`
	Emergency    bool       `yaml:"emergency"`
}

// ScopeYML is one scope rule of a plan file.
type ScopeYML struct {
	Resource string   `yaml:"resource"`
	Verbs    []string `yaml:"verbs"`
}

func readPlanFile(path string) (PlanFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return PlanFile{}, usageErr("%v", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var p PlanFile
	if err := dec.Decode(&p); err != nil {
		return PlanFile{}, usageErr("%s: %v", path, err)
	}
	var missing []string
	for name, v := range map[string]string{"requestedBy": p.RequestedBy, "objective": p.Objective, "method": p.Method, "testApproach": p.TestApproach, "backoutPath": p.BackoutPath, "environment": p.Environment} {
		if strings.TrimSpace(v) == "" {
			missing = append(missing, name)
		}
	}
	if len(p.Scope) == 0 {
		missing = append(missing, "scope")
	}
	if len(missing) > 0 {
		return PlanFile{}, usageErr("%s: missing %s", path, strings.Join(missing, ", "))
	}
	return p, nil
}

func newAgentCmd() *cobra.Command {
	agent := &cobra.Command{Use: "agent", Short: "Agent side: file plans, run sessions, record actions and evidence over the API"}
	f := addAgentFlags(agent)

	plan := &cobra.Command{Use: "plan", Short: "Plans"}
	submit := &cobra.Command{Use: "submit --file plan.yaml", Short: "File a plan for approval; prints the change id and plan hash", Args: cobra.NoArgs}
	file := submit.Flags().String("file", "", "the plan file (YAML)")
	change := submit.Flags().String("change", "", "revise this change's plan instead of filing a new one")
	submit.RunE = func(c *cobra.Command, _ []string) error {
		p, err := readPlanFile(*file)
		if err != nil {
			return err
		}
		cl, err := f.asAgent()
		if err != nil {
			return err
		}
		scope := []map[string]any{}
		for _, r := range p.Scope {
			scope = append(scope, map[string]any{"resource": r.Resource, "verbs": r.Verbs})
		}
		input := map[string]any{"requestedBy": p.RequestedBy, "plan": map[string]any{
			"objective": p.Objective, "method": p.Method, "scope": scope, "testApproach": p.TestApproach,
			"backoutPath": p.BackoutPath, "environment": p.Environment, "risk": p.Risk, "emergency": p.Emergency}}
		if *change != "" {
			input["changeId"] = *change
		}
		var out struct {
			SubmitPlan struct{ ChangeID, PlanHash string } `json:"submitPlan"`
		}
		if err := cl.Do(c.Context(), `mutation($in: SubmitPlanInput!) { submitPlan(input: $in) { changeId planHash } }`, map[string]any{"in": input}, &out); err != nil {
			return apiErr(err)
		}
		fmt.Fprintf(c.OutOrStdout(), "change %s\nplan hash %s\n", out.SubmitPlan.ChangeID, out.SubmitPlan.PlanHash)
		return nil
	}
	plan.AddCommand(submit)

	session := &cobra.Command{Use: "session", Short: "Sessions"}
	start := &cobra.Command{Use: "start --change ID", Short: "Run the issuance gate and keep the session credential", Args: cobra.NoArgs}
	startChange := start.Flags().String("change", "", "the approved change")
	print := start.Flags().Bool("print", false, "print an export line instead of writing the credential file")
	start.RunE = func(c *cobra.Command, _ []string) error {
		if *startChange == "" {
			return usageErr("--change is required")
		}
		cl, err := f.asAgent()
		if err != nil {
			return err
		}
		path := f.credPath(c.Context())
		if !*print {
			if err := checkCredentialPath(path); err != nil {
				return err
			}
		}
		var out struct {
			RequestSession struct{ Credential, ExpiresAt string } `json:"requestSession"`
		}
		if err := cl.Do(c.Context(), `mutation($id: ID!) { requestSession(input: {changeId: $id}) { credential expiresAt } }`, map[string]any{"id": *startChange}, &out); err != nil {
			return apiErr(err)
		}
		if *print {
			fmt.Fprintf(c.OutOrStdout(), "export DOCKET_CREDENTIAL=%s\n", out.RequestSession.Credential)
			return nil
		}
		if err := writeCredential(path, out.RequestSession.Credential); err != nil {
			return err
		}
		fmt.Fprintf(c.OutOrStdout(), "session credential written to %s (expires %s)\n", path, out.RequestSession.ExpiresAt)
		return nil
	}
	end := &cobra.Command{Use: "end", Short: "End the session; its credential dies", Args: cobra.NoArgs}
	end.RunE = func(c *cobra.Command, _ []string) error {
		cl, err := f.session(c.Context())
		if err != nil {
			return err
		}
		if err := cl.Do(c.Context(), `mutation { endSession(input: {}) }`, nil, nil); err != nil {
			return apiErr(err)
		}
		if f.credential == "" {
			os.Remove(f.credPath(c.Context()))
		}
		fmt.Fprintln(c.OutOrStdout(), "session ended")
		return nil
	}
	session.AddCommand(start, end)

	action := &cobra.Command{Use: "action", Short: "Actions"}
	record := &cobra.Command{Use: "record --kind K --use RESOURCE=VERB…", Short: "Record an action under the session credential, checked against the approved scope", Args: cobra.NoArgs}
	kind := record.Flags().String("kind", "", "what kind of action (edit, read, exec, …)")
	usesF := record.Flags().StringArray("use", nil, "a resource and verb, RESOURCE=VERB (repeatable)")
	command := record.Flags().String("command", "", "the command line, for exec actions")
	outcome := record.Flags().String("outcome", "", "what came of it")
	record.RunE = func(c *cobra.Command, _ []string) error {
		if *kind == "" || len(*usesF) == 0 {
			return usageErr("--kind and at least one --use RESOURCE=VERB are required")
		}
		var uses []map[string]any
		for _, u := range *usesF {
			i := strings.LastIndex(u, "=")
			if i <= 0 || i == len(u)-1 {
				return usageErr("--use %q: want RESOURCE=VERB", u)
			}
			uses = append(uses, map[string]any{"resource": u[:i], "verb": u[i+1:]})
		}
		cl, err := f.session(c.Context())
		if err != nil {
			return err
		}
		r, err := recordAction(c.Context(), cl, *kind, uses, *command, *outcome)
		if err != nil {
			return apiErr(err)
		}
		fmt.Fprintf(c.OutOrStdout(), "recorded, in scope: %s\n", strings.Join(r, "; "))
		return nil
	}
	action.AddCommand(record)

	evidence := &cobra.Command{Use: "evidence", Short: "Evidence"}
	attach := &cobra.Command{Use: "attach --kind test|scan --format junit|sarif FILE", Short: "Attach a test or scan report to the change", Args: cobra.ExactArgs(1)}
	ekind := attach.Flags().String("kind", "", "test or scan")
	format := attach.Flags().String("format", "", "junit or sarif")
	attach.RunE = func(c *cobra.Command, args []string) error {
		if (*ekind != "test" && *ekind != "scan") || (*format != "junit" && *format != "sarif") {
			return usageErr("--kind test|scan and --format junit|sarif are required")
		}
		content, err := os.ReadFile(args[0])
		if err != nil {
			return usageErr("%v", err)
		}
		cl, err := f.session(c.Context())
		if err != nil {
			return err
		}
		var out struct {
			AttachEvidence struct {
				Summary map[string]int `json:"summary"`
			} `json:"attachEvidence"`
		}
		q := `mutation($k: String!, $f: String!, $c: String!) { attachEvidence(input: {kind: $k, format: $f, content: $c}) { summary { testsPassed testsFailed testsSkipped critical high medium low } } }`
		if err := cl.Do(c.Context(), q, map[string]any{"k": *ekind, "f": *format, "c": string(content)}, &out); err != nil {
			return apiErr(err)
		}
		s := out.AttachEvidence.Summary
		fmt.Fprintf(c.OutOrStdout(), "attached: tests %d passed, %d failed, %d skipped; findings %d critical, %d high, %d medium, %d low\n",
			s["testsPassed"], s["testsFailed"], s["testsSkipped"], s["critical"], s["high"], s["medium"], s["low"])
		return nil
	}
	evidence.AddCommand(attach)

	promote := &cobra.Command{Use: "promote --change ID", Short: "Ask for promotion: the promotion gate runs and is recorded", Args: cobra.NoArgs}
	pchange := promote.Flags().String("change", "", "the change")
	promote.RunE = func(c *cobra.Command, _ []string) error {
		if *pchange == "" {
			return usageErr("--change is required")
		}
		cl, err := f.asAgent()
		if err != nil {
			return err
		}
		var out struct {
			RequestPromotion struct {
				Status string `json:"status"`
			} `json:"requestPromotion"`
		}
		if err := cl.Do(c.Context(), `mutation($id: ID!) { requestPromotion(input: {changeId: $id}) { status } }`, map[string]any{"id": *pchange}, &out); err != nil {
			return apiErr(err)
		}
		fmt.Fprintf(c.OutOrStdout(), "change %s %s\n", *pchange, out.RequestPromotion.Status)
		return nil
	}
	agent.AddCommand(plan, session, action, evidence, promote)
	return agent
}

// checkCredentialPath refuses a credential file or folder that is not a
// plain file or folder: a repository can ship a symbolic link there, and
// following it would write the secret wherever it points. Session start
// checks before it asks for a session, and again as it writes.
func checkCredentialPath(path string) error {
	dir := filepath.Dir(path)
	if st, err := os.Lstat(dir); err == nil && !st.IsDir() {
		return failed(fmt.Errorf("%s is not a folder (a symbolic link?); the credential is not written through it", dir))
	}
	if st, err := os.Lstat(path); err == nil && !st.Mode().IsRegular() {
		return failed(fmt.Errorf("%s is not a regular file (a symbolic link?); the credential is not written through it", path))
	}
	return nil
}

// writeCredential keeps the session credential in a file only its owner
// reads (0600), written to a temporary file and renamed into place, which
// replaces whatever is at path rather than writing through it. Its folder
// gets a .gitignore of "*", so the credential is never committed.
func writeCredential(path, cred string) error {
	if err := checkCredentialPath(path); err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ignore := filepath.Join(dir, ".gitignore")
	if _, err := os.Lstat(ignore); os.IsNotExist(err) {
		if err := os.WriteFile(ignore, []byte("# Docket's session credential: never commit it\n*\n"), 0o644); err != nil {
			return err
		}
	}
	f, err := renameio.NewPendingFile(path, renameio.WithTempDir(dir), renameio.WithStaticPermissions(0o600))
	if err != nil {
		return err
	}
	defer f.Cleanup()
	if _, err := f.WriteString(cred + "\n"); err != nil {
		return err
	}
	return f.CloseAtomicallyReplace()
}

// recordAction records an action and returns its verdicts' reasons.
func recordAction(ctx context.Context, cl *client.Client, kind string, uses []map[string]any, command, outcome string) ([]string, error) {
	_, reasons, err := cl.RecordAction(ctx, kind, uses, command, outcome)
	return reasons, err
}
