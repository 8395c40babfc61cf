package main

import (
	"context"

	"github.com/userkit/users"
	"github.com/userkit/users/mail"
)

// The four calls that issue a token to be mailed, each in one place. Each
// returns the address to mail as the store has it (users.Delivery.To), never as
// someone typed it: the mail goes to the account's owner.

func (a *App) issuePasswordReset(ctx context.Context, email string) (to, token string, err error) {
	return delivered(a.users.RequestPasswordReset(ctx, email))
}

func (a *App) issueMagicLink(ctx context.Context, email string) (to, token string, err error) {
	return delivered(a.users.RequestMagicLink(ctx, email))
}

func (a *App) issueVerification(ctx context.Context, userID string) (to, token string, err error) {
	return delivered(a.users.RequestEmailVerification(ctx, userID))
}

func (a *App) issueReinvite(ctx context.Context, userID string) (to, token string, err error) {
	return delivered(a.users.Reinvite(ctx, userID))
}

func delivered(d *users.Delivery, err error) (to, token string, _ error) {
	if err != nil {
		return "", "", err
	}
	return d.To, d.Token, nil
}

// mailVerification issues a verification token for the user and mails it. It
// runs on the mail worker.
func (a *App) mailVerification(ctx context.Context, userID string) {
	to, token, err := a.issueVerification(ctx, userID)
	if err != nil {
		a.log.ErrorContext(ctx, "issuing a verification token", "user", userID, "err", err)
		return
	}
	a.mailKind(ctx, mail.KindVerifyEmail, mail.Data{To: to, Link: a.link("/verify", token)})
}
