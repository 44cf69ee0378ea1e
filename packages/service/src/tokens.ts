import { GetCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { CreateTokenResponse, TokenView } from "@nimbus/protocol";
import { dynamo } from "./aws-clients.ts";
import { isConditionFailure, scanAll } from "./dynamo-batch.ts";
import { notFound } from "./errors.ts";
import { tableName } from "./resource.ts";
import { generateToken, hashMatches, hashSecret, parseToken } from "./token-secret.ts";

interface TokenItem {
  tokenId: string;
  secretHash: string;
  name: string;
  createdAt: string;
  revokedAt?: string;
}

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
  await dynamo().send(
    new PutCommand({ TableName: tableName("Tokens"), Item: item, ConditionExpression: "attribute_not_exists(tokenId)" }),
  );
  return { ...view(item), token };
}

export async function listTokens(): Promise<TokenView[]> {
  const items = await scanAll<TokenItem>(tableName("Tokens"));
  return items.sort((a, b) => a.createdAt.localeCompare(b.createdAt)).map(view);
}

/** Marks a token revoked (idempotent); agents using it are refused from their next connection on. */
export async function revokeToken(id: string, now = new Date()): Promise<TokenView> {
  try {
    const result = await dynamo().send(
      new UpdateCommand({
        TableName: tableName("Tokens"),
        Key: { tokenId: id },
        UpdateExpression: "SET revokedAt = if_not_exists(revokedAt, :now)",
        ConditionExpression: "attribute_exists(tokenId)",
        ExpressionAttributeValues: { ":now": now.toISOString() },
        ReturnValues: "ALL_NEW",
      }),
    );
    return view(result.Attributes as TokenItem);
  } catch (error) {
    if (isConditionFailure(error)) {
      throw notFound(`no token with id ${id} — list them with \`nimbus token list\``);
    }
    throw error;
  }
}

export type TokenCheck = { ok: true; tokenId: string } | { ok: false; reason: string };

/** Read-only: a refused token leaves no trace. */
export async function verifyToken(token: string | undefined): Promise<TokenCheck> {
  if (!token) return { ok: false, reason: "missing bearer token" };
  const parsed = parseToken(token);
  if (!parsed) return { ok: false, reason: "malformed token" };
  const { Item } = await dynamo().send(
    new GetCommand({ TableName: tableName("Tokens"), Key: { tokenId: parsed.id }, ConsistentRead: true }),
  );
  const item = Item as TokenItem | undefined;
  if (!item || !hashMatches(parsed.secret, item.secretHash)) return { ok: false, reason: "unknown token" };
  if (item.revokedAt) return { ok: false, reason: "token revoked" };
  return { ok: true, tokenId: item.tokenId };
}
