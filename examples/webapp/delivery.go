package main

import "context"

// The four calls that issue a token to be mailed, each in one place. Each
// returns the address to mail as the store has it, never as someone typed it:
// the mail goes to the account's owner. (When these calls return a
// *users.Delivery, use its To and Token here and nothing else changes.)

func (a *App) issuePasswordReset(ctx context.Context, email string) (to, token string, err error) {
	if token, err = a.users.RequestPasswordReset(ctx, email); err != nil {
		return "", "", err
	}
	u, err := a.users.GetByEmail(ctx, email)
	if err != nil {
		return "", "", err
	}
	return u.Email, token, nil
}

func (a *App) issueMagicLink(ctx context.Context, email string) (to, token string, err error) {
	if token, err = a.users.RequestMagicLink(ctx, email); err != nil {
		return "", "", err
	}
	u, err := a.users.GetByEmail(ctx, email)
	if err != nil {
		return "", "", err
	}
	return u.Email, token, nil
}

func (a *App) issueVerification(ctx context.Context, userID string) (to, token string, err error) {
	if token, err = a.users.RequestEmailVerification(ctx, userID); err != nil {
		return "", "", err
	}
	u, err := a.users.Get(ctx, userID)
	if err != nil {
		return "", "", err
	}
	return u.Email, token, nil
}

func (a *App) issueReinvite(ctx context.Context, userID string) (to, token string, err error) {
	if token, err = a.users.Reinvite(ctx, userID); err != nil {
		return "", "", err
	}
	u, err := a.users.Get(ctx, userID)
	if err != nil {
		return "", "", err
	}
	return u.Email, token, nil
}

// mailVerification issues a verification token for the user and mails it. It
// runs on the mail worker.
func (a *App) mailVerification(ctx context.Context, userID string) {
	to, token, err := a.issueVerification(ctx, userID)
	if err != nil {
		a.log.ErrorContext(ctx, "issuing a verification token", "user", userID, "err", err)
		return
	}
	a.send(ctx, Message{To: to, Subject: "Confirm your email",
		Text: "Open this link to confirm your email address.", Link: a.link("/verify", token)})
}
