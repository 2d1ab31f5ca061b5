package domain

import (
	"fmt"
	"testing"
)

func TestMatchTokenAmongMany(t *testing.T) {
	p := Principal{ID: "bob", Tokens: map[string]string{}}
	for i := range 64 {
		p.Tokens[fmt.Sprintf("tok-%d", i)] = HashSecret(fmt.Sprintf("secret-%d", i))
	}
	for _, i := range []int{0, 17, 63} {
		if id, ok := p.MatchToken(fmt.Sprintf("secret-%d", i)); !ok || id != fmt.Sprintf("tok-%d", i) {
			t.Errorf("secret-%d matches %q, %v", i, id, ok)
		}
	}
	for _, s := range []string{"secret-64", "", HashSecret("secret-1")} {
		if id, ok := p.MatchToken(s); ok {
			t.Errorf("%q matches %q", s, id)
		}
	}
	delete(p.Tokens, "tok-17") // revoked
	if id, ok := p.MatchToken("secret-17"); ok {
		t.Errorf("a revoked token matches %q", id)
	}
}

func TestMatchKey(t *testing.T) {
	a := Agent{ID: "bot", Keys: map[string]string{"k1": HashSecret("one"), "k2": HashSecret("two")}}
	if id, ok := a.MatchKey("two"); !ok || id != "k2" {
		t.Errorf("two matches %q, %v", id, ok)
	}
	if _, ok := a.MatchKey("three"); ok {
		t.Error("an unknown key matches")
	}
	a.Retired = true
	if _, ok := a.MatchKey("two"); ok {
		t.Error("a retired agent's key matches")
	}
}
