/** An error whose message a user can act on; `status` is the HTTP status the API answers with. */
export class NimbusError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = "NimbusError";
  }
}

export const unauthorized = (message: string) => new NimbusError("unauthorized", message, 401);
export const badRequest = (message: string) => new NimbusError("bad-request", message, 400);
export const notFound = (message: string) => new NimbusError("not-found", message, 404);
export const conflict = (message: string) => new NimbusError("conflict", message, 409);
