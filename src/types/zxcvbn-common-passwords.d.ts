/** zxcvbn's list of common passwords, most common first (src/accounts/password-policy.ts); the package types only its index. */
declare module '@zxcvbn-ts/language-common/dist/passwords.json.mjs' {
  const passwords: string[];
  export default passwords;
}
