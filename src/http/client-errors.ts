/**
 * Requests Node's HTTP parser rejects before any middleware runs (headers or URL too large, malformed request
 * line) would otherwise get a bare status line and no body. They get a JSON reason like every other error.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

const REASONS: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'the request line or headers are too large'],
  HPE_URI_TOO_LONG: [414, 'the URL is too long'],
};

export function answerClientErrors(server: Server): void {
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable || (error.code === 'ECONNRESET')) {
      socket.destroy();
      return;
    }
    const [status, reason] = REASONS[error.code ?? ''] ?? [400, 'the request could not be parsed'];
    // A HEAD request gets the headers only (a body would be read as the start of another response).
    const isHead = (error as { rawPacket?: Buffer }).rawPacket?.subarray(0, 5).toString('latin1') === 'HEAD ';
    const body = isHead ? '' : JSON.stringify({ error: 'invalid_request', error_description: reason });
    socket.end(
      `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 414 ? 'URI Too Long' : 'Bad Request'}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
}
