/**
 * @module The API server's errors as Kubernetes `Status` objects (meta/v1), with the reasons,
 * codes and message shapes of k8s.io/apimachinery/pkg/api/errors, so a client's error path sees
 * what a real kube-apiserver would send.
 */

/** A `Status` (kind Status, apiVersion v1) as the apiserver writes it for a failed request. */
export interface KubeStatus {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, unknown>;
  status: "Failure" | "Success";
  message?: string;
  reason?: string;
  details?: { name?: string; group?: string; kind?: string; uid?: string; causes?: { reason?: string; message?: string; field?: string }[] };
  code: number;
}

/** A request that fails with a `Status`; thrown by the handlers, written by the HTTP edge. */
export class ApiError extends Error {
  constructor(readonly status: KubeStatus) {
    super(status.message);
  }
  get code(): number {
    return this.status.code;
  }
}

function failure(code: number, reason: string, message: string, details?: KubeStatus["details"]): ApiError {
  return new ApiError({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, ...(details ? { details } : {}), code });
}

/** `resource "name"` or `resource` as errors.New* phrase it. */
function what(resource: string, name?: string): string {
  return name ? `${resource} "${name}"` : resource;
}

export const unauthorized = () => failure(401, "Unauthorized", "Unauthorized");

/** RBAC's denial, worded as the apiserver's authorization filter words it. */
export function forbidden(user: string, verb: string, resource: string, subresource: string, name: string | undefined, namespace: string | undefined): ApiError {
  const full = subresource ? `${resource}/${subresource}` : resource;
  const scope = namespace ? `in the namespace "${namespace}"` : "at the cluster scope";
  const message = `${what(resource, name)} is forbidden: User "${user}" cannot ${verb} resource "${full}" in API group "" ${scope}`;
  return failure(403, "Forbidden", message, { ...(name ? { name } : {}), kind: resource });
}

/** RBAC's denial of a non-resource URL (`/api`, `/version` …). */
export function forbiddenPath(user: string, verb: string, path: string): ApiError {
  return failure(403, "Forbidden", `forbidden: User "${user}" cannot ${verb} path "${path}"`, {});
}

export const notFound = (resource: string, name: string) => failure(404, "NotFound", `${what(resource, name)} not found`, { name, kind: resource });
export const pathNotFound = () => failure(404, "NotFound", "the server could not find the requested resource", {});
export const alreadyExists = (resource: string, name: string) => failure(409, "AlreadyExists", `${what(resource, name)} already exists`, { name, kind: resource });
export const conflict = (resource: string, name: string) =>
  failure(409, "Conflict", `Operation cannot be fulfilled on ${what(resource, name)}: the object has been modified; please apply your changes to the latest version and try again`, { name, kind: resource });
export const badRequest = (message: string) => failure(400, "BadRequest", message);
export const methodNotAllowed = () => failure(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {});
export const unsupportedMediaType = (contentType: string) =>
  failure(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (not ${JSON.stringify(contentType)})`);
/** 410 Gone: the version asked for was compacted away. */
export const gone = (message: string) => failure(410, "Expired", message);
export const tooLargeResourceVersion = (asked: number, current: number) =>
  failure(504, "Timeout", `Too large resource version: ${asked}, current: ${current}`, { causes: [{ reason: "ResourceVersionTooLarge", message: "Too large resource version" }], retryAfterSeconds: 1 } as KubeStatus["details"]);

/** 422 Invalid with one cause per field, as field.ErrorList renders. */
export function invalid(kind: string, name: string, causes: { field: string; message: string }[]): ApiError {
  const list = causes.map((c) => `${c.field}: ${c.message}`).join(", ");
  return failure(422, "Invalid", `${kind} "${name}" is invalid: ${causes.length === 1 ? list : `[${list}]`}`, {
    name, kind, causes: causes.map((c) => ({ reason: "FieldValueInvalid", message: c.message, field: c.field })),
  });
}

/**
 * 422 for a patch that cannot be applied (a failed JSON-patch `test`, a missing path): the
 * apiserver's errors.NewGenericServerResponse, the reason in a cause.
 */
export const unprocessable = (message: string) =>
  failure(422, "Invalid", "the server rejected our request due to an error in our request", { causes: [{ reason: "UnexpectedServerResponse", message }] });

/** The Status a DELETE answers with when the object is gone at once (registry finalizeDelete). */
export function deleted(kind: string, name: string, uid: string): KubeStatus {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", details: { name, kind, uid }, code: 200 };
}
