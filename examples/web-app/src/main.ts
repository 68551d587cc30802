/**
 * Runs the example web app:
 *   ISSUER=http://localhost:3000 CLIENT_ID=... CLIENT_SECRET=... PORT=3001 API_URL=http://localhost:4000/messages \
 *   API_RESOURCE=https://api.example.com npx tsx examples/web-app/src/main.ts
 */
import { createWebApp } from './app.js';

const required = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`set ${name}`);
  return value;
};

const port = Number(process.env.PORT || 3001);
const app = await createWebApp({
  issuer: process.env.ISSUER || 'http://localhost:3000',
  clientId: required('CLIENT_ID'),
  clientSecret: required('CLIENT_SECRET'),
  baseUrl: process.env.BASE_URL || `http://localhost:${port}`,
  apiUrl: process.env.API_URL || 'http://localhost:4000/messages',
  apiResource: process.env.API_RESOURCE || 'https://api.example.com',
});
app.listen(port, () => console.log(`example web app on http://localhost:${port}`));
