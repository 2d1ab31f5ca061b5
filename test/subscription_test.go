package test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

// TestEventsSubscription subscribes over a websocket (graphql-transport-ws,
// authenticated in connection_init) to one change's events and sees the
// approval arrive.
func TestEventsSubscription(t *testing.T) {
	bin := buildDocket(t)
	data := t.TempDir()
	run(t, bin, "principals", "add", "alice", "--data", data, "--role", "requester")
	bob := secret(t, run(t, bin, "principals", "add", "bob", "--data", data, "--role", "approver", "--authority", "file:**=write"))
	agent := secret(t, run(t, bin, "agents", "add", "claude-ci", "--data", data, "--owner", "alice"))
	s := startServer(t, bin, data)
	d := mustData(t)(s.gql(t, agent, `mutation { submitPlan(input: {requestedBy: "alice", plan: {objective: "o", method: "m", scope: [{resource: "file:github.com/acme/api/**", verbs: ["write"]}], testApproach: "t", backoutPath: "b", environment: "production"}}) { changeId planHash } }`, nil))
	sub := d["submitPlan"].(map[string]any)
	id, hash := sub["changeId"].(string), sub["planHash"].(string)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn := s.dialWS(ctx, t, nil)
	send := func(v any) {
		if err := wsjson.Write(ctx, conn, v); err != nil {
			t.Fatal(err)
		}
	}
	recv := func() map[string]any {
		var m map[string]any
		if err := wsjson.Read(ctx, conn, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	send(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + bob}})
	for m := recv(); m["type"] != "connection_ack"; m = recv() {
		if m["type"] != "ka" {
			t.Fatalf("init: %v", m)
		}
	}
	send(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
		"query": `subscription($id: ID) { events(changeId: $id) { type changeId actorId data } }`, "variables": map[string]any{"id": id}}})
	time.Sleep(200 * time.Millisecond) // let the subscription start before the approval
	mustData(t)(s.gql(t, bob, `mutation($id: ID!, $h: String!) { approvePlan(input: {changeId: $id, planHash: $h}) { status } }`, map[string]any{"id": id, "h": hash}))
	var types []string
	for len(types) < 2 {
		m := recv()
		if m["type"] == "ka" {
			continue
		}
		if m["type"] != "next" {
			t.Fatalf("subscription: %v", m)
		}
		raw, _ := json.Marshal(m["payload"])
		var p struct {
			Data struct {
				Events struct{ Type, ChangeID, ActorID string } `json:"events"`
			} `json:"data"`
		}
		json.Unmarshal(raw, &p)
		if p.Data.Events.ChangeID != id || p.Data.Events.ActorID != "bob" {
			t.Fatalf("event %s", raw)
		}
		types = append(types, p.Data.Events.Type)
	}
	if strings.Join(types, ",") != "PlanViewed,PlanApproved" {
		t.Fatalf("events %v, want PlanViewed then PlanApproved", types)
	}

	// A mutation over the websocket is refused, and nothing is written:
	// the body limit and the UTF-8 check see HTTP requests.
	send(map[string]any{"id": "2", "type": "subscribe", "payload": map[string]any{
		"query": `mutation { declareFreeze(input: {environment: "production", reason: "over a websocket"}) { freezeId } }`}})
	for {
		m := recv()
		if m["id"] != "2" {
			continue
		}
		if raw, _ := json.Marshal(m); !strings.Contains(string(raw), `"code":"INVALID_INPUT"`) {
			t.Fatalf("mutation over a websocket: %s", raw)
		}
		break
	}
	if d := mustData(t)(s.gql(t, bob, `{ freezes { id } }`, nil)); len(d["freezes"].([]any)) != 0 {
		t.Fatalf("freezes after a websocket mutation: %v", d)
	}

	// An anonymous connection is refused at its init, before any
	// operation: no acknowledgement, and the server closes it.
	conn2 := s.dialWS(ctx, t, nil)
	wsjson.Write(ctx, conn2, map[string]any{"type": "connection_init"})
	for {
		var m map[string]any
		err := wsjson.Read(ctx, conn2, &m)
		if err != nil {
			if websocket.CloseStatus(err) == -1 {
				t.Fatalf("anonymous connection: %v, want the server to close it", err)
			}
			break
		}
		if m["type"] == "connection_ack" {
			t.Fatalf("anonymous connection acknowledged: %v", m)
		}
	}
}

// dialWS opens a graphql-transport-ws websocket to the server's /graphql,
// with header on the upgrade request; it is closed when the test ends.
func (s *server) dialWS(ctx context.Context, t *testing.T, header http.Header) *websocket.Conn {
	t.Helper()
	conn, _, err := websocket.Dial(ctx, strings.Replace(s.url, "http", "ws", 1)+"/graphql", &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}, HTTPHeader: header})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	return conn
}
