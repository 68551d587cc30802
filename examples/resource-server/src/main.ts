/** Runs the example API: ISSUER=https://id.example.com AUDIENCE=https://api.example.com PORT=4000 npx tsx src/main.ts */
import { createResourceServer } from './app.js';

const issuer = process.env.ISSUER ?? 'http://localhost:3000';
const audience = process.env.AUDIENCE ?? 'https://api.example.com';
const port = Number(process.env.PORT ?? 4000);
// Behind a proxy that passes on client certificates (tokens bound to them, RFC 8705): its header's name.
const certificateHeader = process.env.CERTIFICATE_HEADER;

const app = await createResourceServer({ issuer, audience, certificateHeader });
app.listen(port, () => console.log(`example API for ${audience} on http://localhost:${port} (tokens from ${issuer})`));
