package main

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/userkit/users"
	"github.com/userkit/users/storetest"
)

func (e *env) auditLog(admin, userID, query string) apiAuditPage {
	e.tb.Helper()
	r := e.call("GET", "/v1/users/"+userID+"/audit"+query, admin, "", 200)
	var p apiAuditPage
	if err := json.Unmarshal(r.Data, &p); err != nil || p.Entries == nil {
		e.tb.Fatalf("data is not an audit page: %v; body %s", err, r.Raw)
	}
	return p
}

// TestAuditLog: an admin reads what happened to a user, newest first, by type
// and time, page by page; the entries name the actor.
func TestAuditLog(t *testing.T) {
	e := newEnv(t, users.NewMemoryStore())
	admin := e.login(adminEmail, adminPassword)
	adminID := e.call("GET", "/v1/me", admin, "", 200).user(t).ID
	const pw = storetest.Password
	jane := e.create(admin, `{"name":"Jane","email":"jane@example.com","password":"`+pw+`"}`)
	janeTok := e.login("jane@example.com", pw)
	e.fail("POST", "/v1/auth/login", "", `{"email":"jane@example.com","password":"not her password"}`, 401, "invalid_credentials", "")
	e.call("PUT", "/v1/users/"+jane.ID+"/role", admin, `{"role":"viewer"}`, 200)

	all := e.auditLog(admin, jane.ID, "")
	var types []users.EventType
	for _, en := range all.Entries {
		types = append(types, en.Type)
		if en.UserID != jane.ID {
			t.Errorf("entry %s of another user", mustJSON(en))
		}
	}
	want := []users.EventType{users.EventRoleChanged, users.EventLoginFailed, users.EventLoginSucceeded, users.EventUserCreated}
	if !slices.Equal(types, want) || all.Next != "" {
		t.Fatalf("Jane's log %v (next %q), want %v, newest first, one page", types, all.Next, want)
	}
	role, failed, created := all.Entries[0], all.Entries[1], all.Entries[3]
	if role.ActorID != adminID || role.Data["role_from"] != "user" || role.Data["role_to"] != "viewer" {
		t.Errorf("role change entry %s, want the admin as actor and the old and new role", mustJSON(role))
	}
	if created.ActorID != adminID || failed.Reason != "wrong_password" || failed.ActorID != "" {
		t.Errorf("created %s, failed %s", mustJSON(created), mustJSON(failed))
	}
	if strings.Contains(mustJSON(all), pw) || strings.Contains(mustJSON(all), "not her password") || strings.Contains(mustJSON(all), janeTok) {
		t.Error("the audit log holds a password or a token")
	}

	// Types, as one comma list or repeated.
	for _, q := range []string{"?type=login.succeeded,login.failed", "?type=login.succeeded&type=login.failed"} {
		if p := e.auditLog(admin, jane.ID, q); len(p.Entries) != 2 || p.Entries[0].Type != users.EventLoginFailed {
			t.Errorf("%s: %s", q, mustJSON(p))
		}
	}
	// Time: since a moment after the log, nothing; until it, everything.
	later := all.Entries[0].Time.Add(time.Second).UTC().Format(time.RFC3339)
	if p := e.auditLog(admin, jane.ID, "?since="+later); len(p.Entries) != 0 {
		t.Errorf("since %s: %s, want nothing", later, mustJSON(p))
	}
	if p := e.auditLog(admin, jane.ID, "?until="+later); len(p.Entries) != 4 {
		t.Errorf("until %s: %d entries, want 4", later, len(p.Entries))
	}
	// Pages of one: the cursor walks the whole log once, in order.
	var walked []string
	q := "?limit=1"
	for range 10 {
		p := e.auditLog(admin, jane.ID, q)
		for _, en := range p.Entries {
			walked = append(walked, en.ID)
		}
		if p.Next == "" {
			break
		}
		q = "?limit=1&before=" + url.QueryEscape(p.Next)
	}
	var ids []string
	for _, en := range all.Entries {
		ids = append(ids, en.ID)
	}
	if !slices.Equal(walked, ids) {
		t.Errorf("paging by one walked %v, want %v", walked, ids)
	}

	e.fail("GET", "/v1/users/"+jane.ID+"/audit?since=yesterday", admin, "", 400, "invalid_request", "since")
	e.fail("GET", "/v1/users/"+jane.ID+"/audit?limit=501", admin, "", 400, "invalid_request", "limit")
	e.fail("GET", "/v1/users/"+jane.ID+"/audit?before=%21%21", admin, "", 400, "invalid_request", "before")
	e.fail("GET", "/v1/users/"+jane.ID+"/audit?type=", admin, "", 400, "invalid_request", "type")
	e.fail("GET", "/v1/users/"+jane.ID+"/audit?since="+later+"&until="+later, admin, "", 400, "invalid_request", "until")
	e.fail("GET", "/v1/users/"+jane.ID+"/audit", janeTok, "", 403, "forbidden", "")

	// The log outlives the user.
	e.call("DELETE", "/v1/users/"+jane.ID, admin, "", 200)
	if p := e.auditLog(admin, jane.ID, "?limit=1"); len(p.Entries) != 1 || p.Entries[0].Type != users.EventUserRemoved || p.Entries[0].ActorID != adminID {
		t.Errorf("after the removal: %s", mustJSON(p))
	}
}
