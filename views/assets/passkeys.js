/*
 * Passkeys on our pages (src/accounts/passkeys.ts), through @simplewebauthn/browser (/assets/webauthn.js, which
 * defines SimpleWebAuthnBrowser). The forms stay hidden unless this browser can use passkeys, and each is still an
 * ordinary form post: the script only asks the server for the ceremony's options, runs the ceremony, and puts the
 * browser's answer in a hidden field before posting. No inline script anywhere: the CSP allows none.
 *
 *   #passkey-sign-in  the login page: "Sign in with a passkey", and passkeys offered in the email field's autofill
 *   #passkey-add      the account page: "Add a passkey", after the current password
 *   #passkey-register the registration page: "Create account with a passkey instead", with the name, email and
 *                     boxes of the form it names in data-details
 */
(() => {
  
  const webauthn = window.SimpleWebAuthnBrowser;
  if (!webauthn?.browserSupportsWebAuthn()) return;

  /** Posts the form fields; the answer's JSON, if it is JSON. */
  async function post(url, fields) {
    const response = await fetch(url, {
      method: 'POST',
      body: new URLSearchParams(fields),
      credentials: 'same-origin',
      headers: { Accept: 'application/json' },
    });
    const json = (response.headers.get('content-type') || '').includes('application/json');
    return { response, body: json ? await response.json() : undefined };
  }

  function showError(form, message) {
    const place = form.querySelector('[data-passkey-error]');
    place.textContent = message;
    place.hidden = !message;
  }

  /** What to tell the person when the browser's ceremony failed. */
  function failureOf(error, action) {
    if (error && error.name === 'NotAllowedError') return `The passkey was not used. ${action}`;
    if (error && error.name === 'InvalidStateError') return 'This authenticator already holds a passkey for your account.';
    return `Your browser could not use a passkey${error?.message ? ` (${error.message})` : ''}. ${action}`;
  }

  const signIn = document.getElementById('passkey-sign-in');
  if (signIn) {
    signIn.hidden = false;
    let started = false;
    const answer = async (useBrowserAutofill) => {
      const { response, body } = await post(signIn.dataset.options, { csrf: signIn.elements.csrf.value });
      // The sign-in ended, expired or moved on: its own page says what to do.
      if (!response.ok || !body) return location.reload();
      const credential = await webauthn.startAuthentication({ optionsJSON: body, useBrowserAutofill });
      signIn.elements.credential.value = JSON.stringify(credential);
      const remember = document.getElementById('remember');
      signIn.elements.remember.disabled = !(remember?.checked);
      signIn.submit();
    };
    signIn.addEventListener('submit', (event) => {
      event.preventDefault();
      started = true;
      showError(signIn, '');
      answer(false).catch((error) => {
        // Aborted: another ceremony took its place.
        if (error.name !== 'AbortError') showError(signIn, failureOf(error, 'Try again, or sign in with your password.'));
      });
    });
    // Where the browser offers passkeys in the email field's autofill, have one ready there (the login page; the
    // second step's page has no such field).
    if (document.querySelector('input[autocomplete$="webauthn"]')) {
      webauthn
        .browserSupportsWebAuthnAutofill()
        .then((supported) => supported && !started && answer(true))
        .catch(() => {});
    }
  }

  const register = document.getElementById('passkey-register');
  if (register) {
    register.hidden = false;
    const details = document.getElementById(register.dataset.details).elements;
    register.addEventListener('submit', async (event) => {
      event.preventDefault();
      showError(register, '');
      const fields = { csrf: register.elements.csrf.value, name: details.name.value, email: details.email.value };
      if (details.terms?.checked) fields.terms = details.terms.value;
      try {
        const { response, body } = await post(register.dataset.options, fields);
        if (!response.ok && body && body.error) return showError(register, body.error);
        if (!response.ok || !body) return location.reload();
        const credential = await webauthn.startRegistration({ optionsJSON: body });
        register.elements.credential.value = JSON.stringify(credential);
        register.elements.remember.disabled = !details.remember?.checked;
        register.submit();
      } catch (error) {
        showError(register, failureOf(error, 'Try again, or choose a password.'));
      }
    });
  }

  const add = document.getElementById('passkey-add');
  if (add) {
    add.hidden = false;
    const unsupported = document.getElementById('passkey-unsupported');
    if (unsupported) unsupported.hidden = true;
    add.addEventListener('submit', async (event) => {
      event.preventDefault();
      showError(add, '');
      try {
        // An account without a password has no such field: its recent sign-in stands for it.
        const current = add.elements.current;
        const { response, body } = await post(add.dataset.options, { csrf: add.elements.csrf.value, ...(current && { current: current.value }) });
        if (!response.ok && body && body.error) return showError(add, body.error);
        if (!response.ok || !body) return location.reload();
        const credential = await webauthn.startRegistration({ optionsJSON: body.options });
        add.elements.credential.value = JSON.stringify(credential);
        add.elements.challenge.value = body.challenge;
        // The password was checked with the options; it is not sent again.
        if (current) current.disabled = true;
        add.submit();
      } catch (error) {
        showError(add, failureOf(error, 'Try again.'));
      }
    });
  }
})();
