package users

import (
	"context"
	"time"
)

// FlowRecord is what a Store keeps of a sign-in with an external provider
// between its start and the provider's callback: the state's SHA-256 as key
// and the Manager's payload (the provider, the nonce, the PKCE verifier,
// where to return, the binding's hash, the linking user), which a Store
// keeps as it is given and interprets none of.
type FlowRecord struct {
	Hash      []byte // SHA-256 of the state, 32 bytes
	Data      []byte // the Manager's payload, up to MaxFlowDataLen bytes; nil and empty are the same
	CreatedAt time.Time
	ExpiresAt time.Time
}

// MaxFlowDataLen is the largest FlowRecord.Data the Manager writes.
const MaxFlowDataLen = 4 << 10

// Clone returns a deep copy of f.
func (f *FlowRecord) Clone() *FlowRecord {
	if f == nil {
		return nil
	}
	c := *f
	c.Hash = append([]byte(nil), f.Hash...)
	c.Data = append([]byte(nil), f.Data...)
	return &c
}

// FlowStore is the provider flows' part of a Store: single-use records found
// by their hash, so that several Managers sharing a store agree on which
// callbacks are still open. storetest.RunFlows checks it alone.
//
// Not found: a flow that is not there (never made, consumed, or swept by
// DeleteExpired) gives ErrNotFound. Conflict: CreateFlow gives ErrConflict
// for a taken hash. Atomicity: ConsumeFlow finds and deletes in one step, so
// of any number of concurrent calls for one flow exactly one gets it.
type FlowStore interface {
	// CreateFlow stores a new flow. It returns ErrConflict, writing nothing,
	// if f.Hash is taken.
	CreateFlow(ctx context.Context, f *FlowRecord, audit ...*AuditEntry) error

	// ConsumeFlow atomically finds the flow with this hash, deletes it and
	// returns it, whatever its expiry: of any number of concurrent calls for
	// one flow, exactly one gets it. It returns ErrNotFound, deleting
	// nothing, if there is no such flow.
	ConsumeFlow(ctx context.Context, hash []byte, audit ...*AuditEntry) (*FlowRecord, error)
}
