<?php
// The signatures this panel shares with the SSL service, all from one secret: launch links (a
// JWT the browser carries), events (this panel -> service) and bridge calls (service -> this
// panel), an HMAC over timestamp and body, and webhooks (Standard Webhooks). Nothing is signed
// with the secret itself: each purpose has its own key, derived with HKDF-SHA256 (bridge_key),
// so a signature made for one purpose verifies for no other. Plain PHP, no library: each is a
// few lines of hash_hkdf and hash_hmac, and a copy of this file is all a panel needs.

const MAX_CLOCK_SKEW = 300; // seconds a signed timestamp may be off, either way
const LAUNCH_TOKEN_LIFETIME = 120; // seconds; the service accepts at most 300

/** The key of one purpose: 'launch', 'event', 'call' or 'webhook' (as the service derives it). */
function bridge_key(string $secret, string $purpose): string
{
    return hash_hkdf('sha256', $secret, 32, "panel-ssl/v1/$purpose");
}

function base64url_encode(string $bytes): string
{
    return rtrim(strtr(base64_encode($bytes), '+/', '-_'), '=');
}

/** A launch token: a JWT signed with HS256 and the launch key, made when the link is clicked (single use). */
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
    $signature = base64url_encode(hash_hmac('sha256', "$header.$payload", bridge_key($secret, 'launch'), true));
    return "$header.$payload.$signature";
}

/** The two headers of an event this panel posts: "v1=" hex HMAC of "<timestamp>.<body>", event key. */
function event_headers(string $secret, string $body, int $now): array
{
    return [
        'X-Panel-SSL-Timestamp' => (string) $now,
        'X-Panel-SSL-Signature' => 'v1=' . hash_hmac('sha256', "$now.$body", bridge_key($secret, 'event')),
    ];
}

/** Why a bridge call from the service must be refused, or null when its signature holds. */
function bridge_refusal(string $secret, string $timestamp, string $signature, string $body, int $now): ?string
{
    if (!ctype_digit($timestamp) || abs($now - (int) $timestamp) > MAX_CLOCK_SKEW) {
        return 'The timestamp is missing or more than 5 minutes off.';
    }
    $expected = 'v1=' . hash_hmac('sha256', "$timestamp.$body", bridge_key($secret, 'call'));
    if (!hash_equals($expected, $signature)) {
        return 'The signature does not match this panel\'s bridge secret.';
    }
    return null;
}

/**
 * Why a webhook must be refused, or null when one of its signatures holds (Standard Webhooks:
 * "v1,<base64 HMAC-SHA256 of id.timestamp.body>", several separated by spaces while a key
 * rotates). The key is the webhook key's bytes.
 */
function webhook_refusal(string $secret, string $id, string $timestamp, string $signatures, string $body, int $now): ?string
{
    if ($id === '') {
        return 'The webhook-id header is missing.';
    }
    if (!ctype_digit($timestamp) || abs($now - (int) $timestamp) > MAX_CLOCK_SKEW) {
        return 'The webhook-timestamp is missing or more than 5 minutes off.';
    }
    $expected = base64_encode(hash_hmac('sha256', "$id.$timestamp.$body", bridge_key($secret, 'webhook'), true));
    foreach (explode(' ', $signatures) as $candidate) {
        [$version, $signature] = array_pad(explode(',', $candidate, 2), 2, '');
        if ($version === 'v1' && hash_equals($expected, $signature)) {
            return null;
        }
    }
    return 'No webhook-signature matches this panel\'s secret.';
}
