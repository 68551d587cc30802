/**
 * Checks the admin API's real answers against its own OpenAPI document, with a JSON Schema 2020-12 validator
 * (ajv): a body that does not match the schema documented for its operation and status is an error naming
 * every mismatch. It also keeps which operations' success bodies were checked, so a test can tell one that
 * never was.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';

interface MediaType {
  schema: object;
}

interface Operation {
  responses: Record<string, { content?: Record<string, MediaType> }>;
}

interface OpenApiDocument {
  paths: Record<string, Record<string, Operation>>;
}

const DOCUMENT_KEY = 'openapi.json';
const JSON_TYPE = 'application/json';

/** A JSON pointer segment (RFC 6901), as it may stand in a URI fragment. */
const pointerSegment = (segment: string) => encodeURIComponent(segment.replaceAll('~', '~0').replaceAll('/', '~1'));

const isSuccess = (status: string) => status.startsWith('2');

/** Matches a request path (no query) to a path template of the document, e.g. /clients/{clientId}. */
function templateMatcher(template: string): RegExp {
  const pattern = template
    .split('/')
    .map((segment) => (/^\{[^}]+\}$/.test(segment) ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${pattern}$`);
}

export class DocumentedResponses {
  readonly #document: OpenApiDocument;
  readonly #validator: Ajv2020;
  readonly #templates: { template: string; matcher: RegExp }[];
  readonly #checked = new Set<string>();

  private constructor(document: OpenApiDocument) {
    this.#document = document;
    // zod writes a `pattern` beside each `format` it emits, and ajv checks the pattern: the formats need no code.
    this.#validator = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true, formats: { 'date-time': true, uuid: true } });
    // The document is added whole, so that the $refs in it resolve; its own fields are no schema keywords.
    this.#validator.addVocabulary(Object.keys(document));
    this.#validator.addSchema(document, DOCUMENT_KEY);
    this.#templates = Object.keys(document.paths).map((template) => ({ template, matcher: templateMatcher(template) }));
  }

  /** The document as the server serves it. */
  static async fetch(url: string): Promise<DocumentedResponses> {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`GET ${url}: ${response.status}`);
    return new DocumentedResponses((await response.json()) as OpenApiDocument);
  }

  /**
   * Throws unless `body` matches what the document says `method` `path` answers with `status`. A path or method
   * the document does not describe is not checked (unknown routes answer 404 or 405 on purpose).
   */
  check(method: string, path: string, status: number, body: unknown): void {
    const found = this.#operation(method, path);
    if (!found) return;
    const { template, operation } = found;
    const name = `${method.toUpperCase()} ${template}`;
    const documented = operation.responses[String(status)];
    if (!documented) throw new Error(`${name} answered ${status}, which the document does not list`);
    if (!documented.content) {
      if (body !== undefined) throw new Error(`${name} answered ${status} with a body the document does not describe`);
      return;
    }
    const pointer = ['paths', template, method.toLowerCase(), 'responses', String(status), 'content', JSON_TYPE, 'schema'].map(pointerSegment);
    const validate = this.#validator.getSchema(`${DOCUMENT_KEY}#/${pointer.join('/')}`);
    if (!validate) throw new Error(`${name} ${status}: the document's schema could not be resolved`);
    if (!validate(body)) {
      const problems = (validate.errors ?? []).map((error) => `  ${error.instancePath || '(body)'} ${error.message ?? ''} ${JSON.stringify(error.params)}`);
      throw new Error(`${name} ${status}: the body does not match the document:\n${problems.join('\n')}\nbody: ${JSON.stringify(body)}`);
    }
    if (isSuccess(String(status))) this.#checked.add(name);
  }

  /** Operations documented with a JSON success body that no `check` has seen yet. */
  unchecked(): string[] {
    return Object.entries(this.#document.paths).flatMap(([template, methods]) =>
      Object.entries(methods)
        .filter(([, operation]) => Object.entries(operation.responses).some(([status, response]) => isSuccess(status) && response.content?.[JSON_TYPE]))
        .map(([method]) => `${method.toUpperCase()} ${template}`)
        .filter((name) => !this.#checked.has(name)),
    );
  }

  #operation(method: string, path: string): { template: string; operation: Operation } | undefined {
    const bare = path.split('?')[0] ?? path;
    for (const { template, matcher } of this.#templates) {
      const operation = this.#document.paths[template]?.[method.toLowerCase()];
      if (matcher.test(bare) && operation) return { template, operation };
    }
    return undefined;
  }
}
