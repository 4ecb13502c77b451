<?php
// The three signatures this panel shares with the SSL service, all from one secret:
// launch links (a JWT the browser carries), bridge calls and events (an HMAC over timestamp and
// body, both directions), and webhooks (Standard Webhooks). Plain PHP, no library: each is a
// few lines of hash_hmac, and a copy of this file is all a panel needs.

const MAX_CLOCK_SKEW = 300; // seconds a signed timestamp may be off, either way
const LAUNCH_TOKEN_LIFETIME = 120; // seconds; the service accepts at most 300

function base64url_encode(string $bytes): string
{
    return rtrim(strtr(base64_encode($bytes), '+/', '-_'), '=');
}

/** A launch token: a JWT signed with HS256, made when the link is clicked (single use). */
function launch_token(string $secret, array $user, string $account_id, string $target, int $now): string
{
    $claims = [
        'sub' => (string) $user['id'],
        'name' => $user['name'],
        'role' => $user['role'],
        'account' => $account_id,
        'target' => $target,
        'iat' => $now,
        'exp' => $now + LAUNCH_TOKEN_LIFETIME,
        'jti' => bin2hex(random_bytes(16)),
    ];
    $header = base64url_encode(json_encode(['alg' => 'HS256', 'typ' => 'JWT']));
    $payload = base64url_encode(json_encode($claims));
    $signature = base64url_encode(hash_hmac('sha256', "$header.$payload", $secret, true));
    return "$header.$payload.$signature";
}

/** The two headers of a bridge call or an event: "v1=" hex HMAC of "<timestamp>.<body>". */
function bridge_headers(string $secret, string $body, int $now): array
{
    return [
        'X-Panel-SSL-Timestamp' => (string) $now,
        'X-Panel-SSL-Signature' => 'v1=' . hash_hmac('sha256', "$now.$body", $secret),
    ];
}

/** Why a bridge call from the service must be refused, or null when its signature holds. */
function bridge_refusal(string $secret, string $timestamp, string $signature, string $body, int $now): ?string
{
    if (!ctype_digit($timestamp) || abs($now - (int) $timestamp) > MAX_CLOCK_SKEW) {
        return 'The timestamp is missing or more than 5 minutes off.';
    }
    $expected = 'v1=' . hash_hmac('sha256', "$timestamp.$body", $secret);
    if (!hash_equals($expected, $signature)) {
        return 'The signature does not match this panel\'s bridge secret.';
    }
    return null;
}

/**
 * Why a webhook must be refused, or null when one of its signatures holds (Standard Webhooks:
 * "v1,<base64 HMAC-SHA256 of id.timestamp.body>", several separated by spaces while a key
 * rotates). The key is the secret's own bytes.
 */
function webhook_refusal(string $secret, string $id, string $timestamp, string $signatures, string $body, int $now): ?string
{
    if ($id === '') {
        return 'The webhook-id header is missing.';
    }
    if (!ctype_digit($timestamp) || abs($now - (int) $timestamp) > MAX_CLOCK_SKEW) {
        return 'The webhook-timestamp is missing or more than 5 minutes off.';
    }
    $expected = base64_encode(hash_hmac('sha256', "$id.$timestamp.$body", $secret, true));
    foreach (explode(' ', $signatures) as $candidate) {
        [$version, $signature] = array_pad(explode(',', $candidate, 2), 2, '');
        if ($version === 'v1' && hash_equals($expected, $signature)) {
            return null;
        }
    }
    return 'No webhook-signature matches this panel\'s secret.';
}
