/**
 * The one error shape every route answers with, and the mapping from Fastify's own errors onto it.
 * Codes are part of the API: clients and dashboards match on them, so they never change meaning.
 */

export interface ErrorDetail {
  /** The field at fault ("pH", "instances[3].pH"), or "body" for the body as a whole. */
  field: string;
  problem: string;
}

export interface ErrorBody {
  error: string;
  message: string;
  details?: ErrorDetail[];
}

/**
 * Stable error codes with their HTTP status. The caller's mistakes are 4xx: 400 unreadable body,
 * 413 too large (bytes or rows), 415 not JSON, 422 readable but invalid.
 */
export const ERROR_STATUS = {
  invalid_json: 400,
  bad_request: 400,
  unauthorized: 401,
  admin_disabled: 403,
  not_found: 404,
  load_in_progress: 409,
  payload_too_large: 413,
  batch_too_large: 413,
  unsupported_media_type: 415,
  invalid_input: 422,
  bundle_refused: 422,
  // The model's fault, not the caller's: a 5xx, so the release's error-ratio check sees it.
  model_error: 500,
  internal_error: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** At most this many details are listed: a 1000-row batch of garbage must not produce a megabyte of errors. */
export const MAX_DETAILS = 100;

/** An error a route throws on purpose; the app's error handler answers it as-is and counts it. */
export class ApiError extends Error {
  readonly statusCode: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetail[],
  ) {
    super(message);
    this.name = 'ApiError';
    this.statusCode = ERROR_STATUS[code];
  }

  toBody(): ErrorBody {
    return this.details === undefined
      ? { error: this.code, message: this.message }
      : { error: this.code, message: this.message, details: this.details };
  }
}

export function invalidInput(details: ErrorDetail[], total = details.length): ApiError {
  const shown = details.slice(0, MAX_DETAILS);
  const more = total > shown.length ? ` (first ${shown.length} listed)` : '';
  return new ApiError('invalid_input', `request body is invalid: ${total} problem(s)${more}`, shown);
}

/** The subset of a Fastify/Ajv error the mapping reads. */
interface FrameworkError {
  code?: string;
  statusCode?: number;
  message?: string;
  validation?: readonly AjvLikeError[];
}

export interface AjvLikeError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
}

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'bad_request',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_TYPE: 'unsupported_media_type',
  FST_ERR_BAD_URL: 'bad_request',
};

const MESSAGES: Partial<Record<ErrorCode, string>> = {
  invalid_json: 'request body is not valid JSON',
  payload_too_large: 'request body is larger than the configured limit',
  unsupported_media_type: 'request body must be sent as application/json',
};

/** Turns anything a route, a hook or Fastify itself threw into an ApiError (unknown faults become 500). */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const e = (err ?? {}) as FrameworkError;
  if (e.validation) {
    const details = detailsFromAjv(e.validation);
    return invalidInput(details);
  }
  const mapped = e.code ? FASTIFY_CODES[e.code] : undefined;
  if (mapped) return new ApiError(mapped, MESSAGES[mapped] ?? e.message ?? mapped);
  // JSON parse failures from a parser other than Fastify's default (e.g. a plugin's) are SyntaxErrors.
  if (err instanceof SyntaxError) return new ApiError('invalid_json', MESSAGES.invalid_json!);
  const status = e.statusCode ?? 500;
  if (status >= 400 && status < 500) return new ApiError('bad_request', e.message ?? 'bad request');
  return new ApiError('internal_error', 'internal error');
}

/** "/instances/3/fixed acidity" -> "instances[3].fixed acidity"; "" -> "body". */
export function fieldFromPointer(pointer: string, extra?: string): string {
  const parts =
    pointer === ''
      ? []
      : pointer
          .slice(1)
          .split('/')
          .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) parts.push(extra);
  if (parts.length === 0) return 'body';
  let out = '';
  for (const part of parts) {
    if (/^\d+$/.test(part)) out += `[${part}]`;
    else out += out === '' ? part : `.${part}`;
  }
  return out;
}

/** One detail per Ajv error, named by the field it concerns rather than by the schema keyword. */
export function detailsFromAjv(errors: readonly AjvLikeError[]): ErrorDetail[] {
  const out: ErrorDetail[] = [];
  for (const err of errors) {
    switch (err.keyword) {
      case 'required':
        out.push({ field: fieldFromPointer(err.instancePath, String(err.params.missingProperty)), problem: 'is required' });
        break;
      case 'additionalProperties':
        out.push({
          field: fieldFromPointer(err.instancePath, String(err.params.additionalProperty)),
          problem: 'is not an accepted field',
        });
        break;
      case 'type':
        out.push({
          field: fieldFromPointer(err.instancePath),
          problem: err.params.type === 'number' ? 'must be a finite number' : `must be of type ${String(err.params.type)}`,
        });
        break;
      default:
        out.push({ field: fieldFromPointer(err.instancePath), problem: err.message ?? err.keyword });
    }
  }
  return out;
}

/** The JSON schema of ErrorBody, for route response schemas and the OpenAPI document. */
export const ERROR_BODY_SCHEMA = {
  type: 'object',
  required: ['error', 'message'],
  properties: {
    error: { type: 'string' },
    message: { type: 'string' },
    details: {
      type: 'array',
      items: {
        type: 'object',
        required: ['field', 'problem'],
        properties: { field: { type: 'string' }, problem: { type: 'string' } },
      },
    },
  },
} as const;
