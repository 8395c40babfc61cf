// passkey.js is the site's one script: the passkey ceremonies, which only a
// browser's navigator.credentials can perform. It is served from /static/ and
// allowed by the CSP's script-src 'self'; the pages carry no inline script.
//
// A passkey form is hidden until this script shows it (browsers without
// WebAuthn keep the other ways to sign in). Its data-passkey attribute says
// which ceremony it runs: "register" (the account page), "signin" (the sign-in
// page, which also offers the passkeys in the username field's autofill) or
// "second" (the second step of sign-in). On submit the script posts the form
// to data-begin, hands the options it gets to navigator.credentials, posts the
// browser's answer (as JSON, in the field "credential") with the form's fields
// to the form's action, and follows the "redirect" of the answer. A failure
// shows the answer's "error" in the form's [role=alert] element, or goes to its
// "redirect" (the page to confirm it is you, when adding a passkey needs it).
"use strict";

(() => {
	// base64url without padding, as WebAuthn's JSON forms use.
	const toBytes = (s) => {
		const b = atob(s.replace(/-/g, "+").replace(/_/g, "/"));
		return Uint8Array.from(b, (c) => c.charCodeAt(0));
	};
	const toText = (buf) =>
		btoa(String.fromCharCode(...new Uint8Array(buf)))
			.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

	const withIDs = (list) => (list || []).map((c) => ({ ...c, id: toBytes(c.id) }));

	// The server's options in JSON, as navigator.credentials takes them.
	const creationOptions = (o) => ({
		...o,
		challenge: toBytes(o.challenge),
		user: { ...o.user, id: toBytes(o.user.id) },
		excludeCredentials: withIDs(o.excludeCredentials),
	});
	const requestOptions = (o) => ({
		...o,
		challenge: toBytes(o.challenge),
		allowCredentials: withIDs(o.allowCredentials),
	});

	// The browser's credential in JSON, as the server takes it back.
	const credentialJSON = (c) => {
		const r = c.response, out = {
			id: c.id, rawId: toText(c.rawId), type: c.type,
			authenticatorAttachment: c.authenticatorAttachment || undefined,
			clientExtensionResults: c.getClientExtensionResults(),
			response: { clientDataJSON: toText(r.clientDataJSON) },
		};
		if (r.attestationObject) {
			out.response.attestationObject = toText(r.attestationObject);
			out.response.transports = r.getTransports ? r.getTransports() : [];
		} else {
			out.response.authenticatorData = toText(r.authenticatorData);
			out.response.signature = toText(r.signature);
			if (r.userHandle) out.response.userHandle = toText(r.userHandle);
		}
		return JSON.stringify(out);
	};

	// post sends fields as a form, the way the site's handlers read every
	// POST (the CSRF token included), and returns the JSON answer; it throws
	// the answer's error, and where to go instead if it says, when the status
	// is not 2xx.
	const post = async (url, fields) => {
		const res = await fetch(url, {
			method: "POST", body: new URLSearchParams(fields),
			credentials: "same-origin", headers: { Accept: "application/json" },
		});
		let body = {};
		try { body = await res.json(); } catch { /* not JSON: a generic error below */ }
		if (res.ok) return body;
		const err = new Error(body.error || "Something went wrong. Try again in a moment.");
		err.redirect = body.redirect;
		throw err;
	};

	// ceremony runs one passkey ceremony of form; mediation is "conditional"
	// for the autofill, whose request signal aborts.
	const ceremony = async (form, mediation, signal) => {
		const kind = form.dataset.passkey;
		const fields = new FormData(form);
		const opts = await post(form.dataset.begin, fields);
		const publicKey = opts.publicKey || opts;
		const cred = kind === "register"
			? await navigator.credentials.create({ publicKey: creationOptions(publicKey) })
			: await navigator.credentials.get({ publicKey: requestOptions(publicKey), mediation, signal });
		fields.set("credential", credentialJSON(cred));
		const done = await post(form.action, fields);
		location.assign(done.redirect || "/account");
	};

	const show = (form, err) => {
		const alert = form.querySelector("[role=alert]");
		if (!alert) return;
		alert.textContent = err ? err.message : "";
		alert.hidden = !err;
	};

	// A browser's refusal (the person closed the dialog, no passkey matched,
	// the device holds one for this account already, the site is not the
	// passkey's) is a DOMException; say it plainly.
	const explain = (form, err) => !(err instanceof DOMException) ? err
		: form.dataset.passkey === "register"
			? new Error("No passkey was added. Try again; if this device has one for this account already, use that one.")
			: new Error("No passkey was used. Try again, or sign in another way.");

	let autofill = null; // the AbortController of the pending autofill request

	const run = async (form) => {
		if (autofill) autofill.abort(); // one request at a time
		const button = form.querySelector("button");
		button.disabled = true;
		show(form, null);
		try {
			await ceremony(form, "optional");
		} catch (err) {
			if (err.redirect) return location.assign(err.redirect);
			show(form, explain(form, err));
			button.disabled = false;
		}
	};

	// startAutofill offers the passkeys in the username field's suggestions
	// (conditional mediation), where the browser supports it.
	const startAutofill = async (form) => {
		if (!PublicKeyCredential.isConditionalMediationAvailable ||
			!(await PublicKeyCredential.isConditionalMediationAvailable())) return;
		autofill = new AbortController();
		try {
			await ceremony(form, "conditional", autofill.signal);
		} catch (err) {
			if (err.name !== "AbortError") show(form, explain(form, err));
		}
	};

	if (!window.PublicKeyCredential) return;
	for (const form of document.querySelectorAll("form[data-passkey]")) {
		form.hidden = false;
		form.addEventListener("submit", (e) => { e.preventDefault(); run(form); });
		if (form.dataset.passkey === "signin") startAutofill(form);
	}
})();
