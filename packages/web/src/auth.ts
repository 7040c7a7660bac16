import { createHash, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import { ConfigError, type WebConfig } from '@prompt-valet/core';

/**
 * Who may use pv-web. On a loopback address without a token, anyone who can
 * open a connection to it (processes of this machine) may; anywhere else a
 * token is required, and every API request but health must carry it as
 * `Authorization: Bearer <token>`.
 */
export interface AccessPolicy {
  /** undefined: no token configured (loopback only) */
  token: string | undefined;
  loopback: boolean;
}

/** A token shorter than this is refused: it could be guessed. */
export const MIN_TOKEN_LENGTH = 16;

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

/** Read the token from web.token or web.token_file; check that a non-loopback bind has one. Exit 78 otherwise. */
export function accessPolicy(web: WebConfig, host = web.host): AccessPolicy {
  if (web.token && web.token_file) {
    throw new ConfigError('web.token and web.token_file are both set: keep one (web.token_file keeps the secret out of the config file)');
  }
  let token: string | undefined = web.token || undefined;
  if (web.token_file) {
    try {
      token = fs.readFileSync(web.token_file, 'utf8').trim();
    } catch (err) {
      throw new ConfigError(`web.token_file: cannot read ${web.token_file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (!token) throw new ConfigError(`web.token_file: ${web.token_file} is empty`);
  }
  if (token !== undefined && token.length < MIN_TOKEN_LENGTH) {
    throw new ConfigError(`web.token${web.token_file ? '_file' : ''}: the token is shorter than ${MIN_TOKEN_LENGTH} characters (e.g. openssl rand -hex 24)`);
  }
  const loopback = isLoopbackHost(host);
  if (!loopback && token === undefined) {
    throw new ConfigError(
      `web.host is ${host}, not a loopback address, but neither web.token nor web.token_file is set: ` +
        'anyone who can reach the port could submit prompts. Set a token or bind 127.0.0.1',
    );
  }
  return { token, loopback };
}

/**
 * On a Unix socket the file's mode and group decide who may connect; the
 * Host header is the reverse proxy's public name, so it is not checked. A
 * configured token is still required.
 */
export function socketPolicy(web: WebConfig): AccessPolicy {
  const { token } = accessPolicy({ ...web, host: '127.0.0.1' }, '127.0.0.1');
  return { token, loopback: false };
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Constant-time comparison: both sides are hashed first, so lengths never differ and never leak. */
export function tokenMatches(expected: string, given: string | undefined): boolean {
  if (given === undefined) return false;
  return timingSafeEqual(digest(expected), digest(given));
}

/** The token of an `Authorization: Bearer …` header, if there is one. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}
