/** Where apps register themselves (RFC 7591) and manage their registration (RFC 7592, `<path>/<client_id>`). */
export const CLIENT_REGISTRATION_PATH = '/reg';
