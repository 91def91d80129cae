/**
 * What the routers answer themselves, in the project's JSON error shape: one status, code and message per
 * case, shared by the embedded router and the nginx configuration, so a client sees the same answer whichever
 * router runs. Public answers name a color at most, never an address (those stay in the operator's logs and
 * health report).
 */
import { PREVIEW_HEADER, PREVIEW_TOKEN_HEADER } from '../config/defaults.js';

export interface PublicError {
  status: number;
  body: { error: string; message: string };
}

/** Request line and headers, together, at most this many bytes on both routers. */
export const MAX_HEADER_BYTES = 16 * 1024;

/**
 * Lingering close after refusing a body: the rest is read and dropped for at most this long and this much,
 * so a client still uploading reads the answer instead of a reset; past either bound the connection is cut.
 */
export const LINGER_MS = 5_000;
export const LINGER_BYTES = 64 * 1024 * 1024;

const error = (status: number, code: string, message: string): PublicError => ({ status, body: { error: code, message } });

export const PREVIEW_FORBIDDEN = error(
  403,
  'preview_forbidden',
  `the preview route (${PREVIEW_HEADER}) needs the preview token in ${PREVIEW_TOKEN_HEADER}`,
);
export const PREVIEW_INVALID = error(400, 'invalid_preview', `${PREVIEW_HEADER} must be blue or green`);
/** The instances answer a body over their own limit with the same code and message. */
export const PAYLOAD_TOO_LARGE = error(413, 'payload_too_large', 'request body is larger than the configured limit');
export const HEADERS_TOO_LARGE = error(431, 'headers_too_large', `request line and headers must fit in ${MAX_HEADER_BYTES / 1024} KiB`);
export const BAD_REQUEST = error(400, 'bad_request', 'the request is not valid HTTP');
export const EXPECTATION_FAILED = error(417, 'expectation_failed', 'the only expectation a router meets is Expect: 100-continue');
export const REQUEST_TIMEOUT = error(408, 'request_timeout', 'the request was not received in time');

/** `color` is a color name or a phrase like "blue or green": never a host or port. */
export function badGateway(color: string): PublicError {
  return error(502, 'bad_gateway', `no answer from ${color}`);
}

export function gatewayTimeout(color: string): PublicError {
  return error(504, 'gateway_timeout', `no answer from ${color} in time`);
}

export function errorJson(e: PublicError): string {
  return JSON.stringify(e.body);
}
