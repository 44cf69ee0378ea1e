/** Cluster join tokens: created, listed and revoked through the JSON API, checked at `$connect`. */
import type { CreateTokenResponse, TokenView } from "@nimbus/protocol";
import { notFound } from "../platform/errors.ts";
import { generateToken, hashMatches, hashSecret, parseToken } from "../platform/token-secret.ts";
import type { TokenItem } from "../storage/items.ts";
import { Tokens } from "../storage/tables.ts";

const view = ({ tokenId, name, createdAt, revokedAt }: TokenItem): TokenView => ({
  id: tokenId,
  name,
  createdAt,
  ...(revokedAt ? { revokedAt } : {}),
});

export async function createToken(name: string | undefined, now = new Date()): Promise<CreateTokenResponse> {
  const { id, secret, token } = generateToken();
  const item: TokenItem = {
    tokenId: id,
    secretHash: hashSecret(secret),
    name: name ?? `token-${id.slice(0, 6)}`,
    createdAt: now.toISOString(),
  };
  if (!(await Tokens.put(item, { expression: "attribute_not_exists(tokenId)" }))) throw new Error(`token id ${id} exists already`);
  return { ...view(item), token };
}

export async function listTokens(): Promise<TokenView[]> {
  const items = await Tokens.scan();
  return items.sort((a, b) => a.createdAt.localeCompare(b.createdAt)).map(view);
}

/** Marks a token revoked (idempotent); agents using it are refused from their next connection on. */
export async function revokeToken(id: string, now = new Date()): Promise<TokenView> {
  const revoked = await Tokens.updateReturning(
    { tokenId: id },
    {
      UpdateExpression: "SET revokedAt = if_not_exists(revokedAt, :now)",
      ConditionExpression: "attribute_exists(tokenId)",
      ExpressionAttributeValues: { ":now": now.toISOString() },
    },
    "ALL_NEW",
  );
  if (!revoked) throw notFound(`no token with id ${id} — list them with \`nimbus token list\``);
  return view(revoked);
}

export type TokenCheck = { ok: true; tokenId: string } | { ok: false; reason: string };

/** Read-only: a refused token leaves no trace. */
export async function verifyToken(token: string | undefined): Promise<TokenCheck> {
  if (!token) return { ok: false, reason: "missing bearer token" };
  const parsed = parseToken(token);
  if (!parsed) return { ok: false, reason: "malformed token" };
  const item = await Tokens.get({ tokenId: parsed.id });
  if (!item || !hashMatches(parsed.secret, item.secretHash)) return { ok: false, reason: "unknown token" };
  if (item.revokedAt) return { ok: false, reason: "token revoked" };
  return { ok: true, tokenId: item.tokenId };
}
