package domain

import (
	"reflect"
	"testing"
)

// cloned is a state with Apply and Clone.
type cloned[S any] interface {
	*S
	Apply(Event)
	Clone() *S
}

// checkClone folds before into a state, clones it, applies after to the
// clone, and requires the original to equal a fresh fold of before and the
// clone to equal a fresh fold of both.
func checkClone[S any, P cloned[S]](t *testing.T, before, after []Event) {
	t.Helper()
	fold := func(evs ...[]Event) *S {
		s := new(S)
		for _, es := range evs {
			for _, e := range es {
				P(s).Apply(e)
			}
		}
		return s
	}
	orig := fold(before)
	c := P(orig).Clone()
	if !reflect.DeepEqual(c, orig) {
		t.Fatalf("clone differs from the original:\ngot  %+v\nwant %+v", c, orig)
	}
	for _, e := range after {
		P(c).Apply(e)
	}
	if want := fold(before); !reflect.DeepEqual(orig, want) {
		t.Errorf("applying to the clone changed the original:\ngot  %+v\nwant %+v", orig, want)
	}
	if want := fold(before, after); !reflect.DeepEqual(c, want) {
		t.Errorf("clone after applying:\ngot  %+v\nwant %+v", c, want)
	}
}

func TestCloneChange(t *testing.T) {
	p := validPlan()
	before := []Event{
		PlanSubmitted{Change: "c", Version: 1, Plan: p, PlanHash: "h1", RequestedBy: "alice", Agent: "claude", At: t0},
		PlanViewed{Change: "c", PlanHash: "h1", Approver: "bob", At: t0},
		PlanApproved{Change: "c", PlanHash: "h1", Approver: "bob", At: t0},
		CredentialIssued{Change: "c", Session: "s1", Agent: "claude", CredentialID: "cr1", Hash: "x", PlanHash: "h1", IssuedAt: t0, ExpiresAt: t0.Add(1e12)},
		ActionRecorded{Change: "c", Session: "s1", InScope: true, At: t0},
		ExceptionOpened{Change: "c", Exception: "e1", Kind: ExceptionDeviation, Session: "s1", At: t0},
		EvidenceAttached{Change: "c", PlanHash: "h1", Kind: EvidenceTest, SHA256: "a", At: t0},
	}
	after := []Event{
		PlanViewed{Change: "c", PlanHash: "h1", Approver: "carol", At: t0},
		ActionRecorded{Change: "c", Session: "s1", InScope: false, At: t0},
		CredentialRevoked{Change: "c", Session: "s1", At: t0},
		SessionEnded{Change: "c", Session: "s1", At: t0},
		ExceptionResolved{Change: "c", Exception: "e1", Disposition: DispositionAccepted, At: t0},
		ExceptionOpened{Change: "c", Exception: "e2", Kind: ExceptionScanFindings, At: t0},
		CredentialIssued{Change: "c", Session: "s2", Agent: "claude", PlanHash: "h1", IssuedAt: t0, ExpiresAt: t0},
		EvidenceAttached{Change: "c", PlanHash: "h1", Kind: EvidenceScan, SHA256: "b", At: t0},
		ChangePromoted{Change: "c", PlanHash: "h1", At: t0},
		ChangeRolledBack{Change: "c", At: t0},
		PlanSubmitted{Change: "c", Version: 2, Plan: p, PlanHash: "h2", At: t0},
	}
	checkClone[Change](t, before, after)
	checkClone[Change](t, nil, before)
}

func TestCloneIdentities(t *testing.T) {
	checkClone[Principal](t,
		[]Event{PrincipalRegistered{Principal: "p"}, RoleGranted{Principal: "p", Role: RoleApprover, Authority: validPlan().Scope}, TokenIssued{Principal: "p", TokenID: "t1", Hash: "h"}},
		[]Event{RoleGranted{Principal: "p", Role: RoleAdmin}, RoleRevoked{Principal: "p", Role: RoleApprover}, TokenRevoked{Principal: "p", TokenID: "t1"}, TokenIssued{Principal: "p", TokenID: "t2", Hash: "h2"}})
	checkClone[Agent](t,
		[]Event{AgentRegistered{Agent: "a"}, AgentKeyIssued{Agent: "a", KeyID: "k1", Hash: "h"}},
		[]Event{AgentKeyIssued{Agent: "a", KeyID: "k2", Hash: "h2"}, AgentRetired{Agent: "a"}})
	checkClone[Freezes](t,
		[]Event{FreezeDeclared{Freeze: "f1", Environment: "production"}},
		[]Event{FreezeDeclared{Freeze: "f2", Environment: "*"}, FreezeLifted{Freeze: "f1"}})
}

// TestCloneSharesNothingApplyChanges walks a cloned Change and fails on any
// map or map-held pointer it shares with the original, so a field added
// later cannot be shared by mistake.
func TestCloneSharesNothingApplyChanges(t *testing.T) {
	c := &Change{}
	c.Apply(PlanSubmitted{Change: "c", Plan: validPlan(), PlanHash: "h1", At: t0})
	c.Apply(PlanViewed{Change: "c", PlanHash: "h1", Approver: "bob", At: t0})
	c.Apply(CredentialIssued{Change: "c", Session: "s1", PlanHash: "h1"})
	c.Apply(ExceptionOpened{Change: "c", Exception: "e1"})
	c.Apply(EvidenceAttached{Change: "c", PlanHash: "h1"})
	d := c.Clone()
	a, b := reflect.ValueOf(c).Elem(), reflect.ValueOf(d).Elem()
	for i := range a.NumField() {
		name := a.Type().Field(i).Name
		fa, fb := a.Field(i), b.Field(i)
		switch fa.Kind() {
		case reflect.Map:
			if fa.Len() == 0 {
				t.Errorf("%s: empty in the test state; give it an entry", name)
				continue
			}
			if fa.UnsafePointer() == fb.UnsafePointer() {
				t.Errorf("%s: the clone shares the map", name)
			}
			for _, k := range fa.MapKeys() {
				if va := fa.MapIndex(k); va.Kind() == reflect.Pointer && va.UnsafePointer() == fb.MapIndex(k).UnsafePointer() {
					t.Errorf("%s[%v]: the clone shares the value", name, k)
				}
			}
		case reflect.Slice:
			if fa.Len() > 0 && fb.Cap() > fb.Len() {
				t.Errorf("%s: the clone's slice has spare capacity shared with the original", name)
			}
		}
	}
}
