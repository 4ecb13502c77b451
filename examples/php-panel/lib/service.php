<?php
// The panel's side of the SSL service: the bridge it answers, the webhooks it receives and
// the events it posts. Every message is signed (lib/signing.php) with the one bridge secret.

/** POST /bridge: one method call from the service, answered from this panel's database. */
function handle_bridge(): void
{
    $body = file_get_contents('php://input');
    $refusal = bridge_refusal(config()['secret'], $_SERVER['HTTP_X_PANEL_SSL_TIMESTAMP'] ?? '',
        $_SERVER['HTTP_X_PANEL_SSL_SIGNATURE'] ?? '', $body, time());
    if ($refusal !== null) {
        reply_json(401, ['error' => $refusal]);
    }
    $call = json_decode($body, true);
    if (!is_array($call) || !is_string($call['method'] ?? null) || !is_array($call['params'] ?? [])) {
        reply_json(400, ['error' => 'The body must be {"method": ..., "params": {...}}.']);
    }
    $methods = [
        'account_profile' => ['account_id'],
        'account_contacts' => ['account_id'],
        'publish_http_challenge' => ['domain', 'token', 'content'],
        'publish_http_file' => ['domain', 'path', 'content'],
        'unpublish_http_file' => ['domain', 'path'],
        'publish_dns_record' => ['domain', 'name', 'record_type', 'value'],
        'send_mail' => ['to', 'subject', 'body'],
    ];
    $method = $call['method'];
    if (!isset($methods[$method])) {
        reply_json(400, ['error' => "This panel has no bridge method \"$method\"."]);
    }
    $params = $call['params'] ?? [];
    foreach ($methods[$method] as $name) {
        if (!is_string($params[$name] ?? null)) {
            reply_json(400, ['error' => "$method needs the text parameter \"$name\"."]);
        }
    }
    reply_json(200, ['result' => ("bridge_$method")($params)]);
}

function bridge_account_profile(array $params): ?array
{
    $rows = query('SELECT * FROM clients WHERE id = ?', [$params['account_id']]);
    if (!$rows) {
        return null;
    }
    $client = $rows[0];
    $contacts = bridge_account_contacts($params);
    return [
        'account_id' => (string) $client['id'],
        'name' => $client['name'],
        'organization' => $client['organization'],
        'state' => $client['state'],
        'country' => $client['country'],
        'city' => $client['city'],
        'address' => $client['address'],
        'postal_code' => $client['postal_code'],
        'phone' => $client['phone'],
        'default_contact' => $contacts[0] ?? null,
    ];
}

/** Every contact of the client, the default one first. */
function bridge_account_contacts(array $params): array
{
    $rows = query('SELECT contacts.*, clients.country FROM contacts JOIN clients ON clients.id = client_id'
        . ' WHERE client_id = ? ORDER BY is_default DESC, contacts.id', [$params['account_id']]);
    return array_map(fn ($contact) => [
        'id' => (string) $contact['id'],
        'first_name' => $contact['first_name'],
        'last_name' => $contact['last_name'],
        'email' => $contact['email'],
        'phone' => $contact['phone'],
        'country' => $contact['country'],
    ], $rows);
}

function bridge_publish_http_challenge(array $params): bool
{
    return publish('http', $params['domain'], '.well-known/acme-challenge/' . $params['token'], '', $params['content']);
}

function bridge_publish_http_file(array $params): bool
{
    return publish('http', $params['domain'], ltrim($params['path'], '/'), '', $params['content']);
}

/** The pre-flight check's probe file, fetched back already: remove it. */
function bridge_unpublish_http_file(array $params): bool
{
    execute("DELETE FROM published WHERE kind = 'http' AND domain = ? AND name = ?",
        [$params['domain'], ltrim($params['path'], '/')]);
    return true;
}

function bridge_publish_dns_record(array $params): bool
{
    return publish('dns', $params['domain'], $params['name'], $params['record_type'], $params['value']);
}

/** Keep the record; GET /.well-known/... serves the files (a real panel writes the docroot). */
function publish(string $kind, string $domain, string $name, string $type, string $value): bool
{
    execute('INSERT INTO published (kind, domain, name, record_type, value) VALUES (?, ?, ?, ?, ?)',
        [$kind, $domain, $name, $type, $value]);
    return true;
}

/**
 * A mail "sent": it lands in the panel's mail page, filed under the client it is about
 * (account_id; null: none, the admin's alone), never guessed from the address.
 */
function bridge_send_mail(array $params): bool
{
    $account = $params['account_id'] ?? null;
    execute('INSERT INTO mail (recipient, subject, body, account_id) VALUES (?, ?, ?, ?)',
        [$params['to'], $params['subject'], $params['body'], is_string($account) ? $account : null]);
    return true;
}

/**
 * POST /hooks/ssl: a Standard Webhook from the service. A forged or stale one gets 401 and is
 * not kept; a verified one is kept once per webhook-id (a retry counts a delivery) and updates
 * what the panel knows of the order.
 */
function handle_webhook(): void
{
    $body = file_get_contents('php://input');
    $id = $_SERVER['HTTP_WEBHOOK_ID'] ?? '';
    $refusal = webhook_refusal(config()['secret'], $id, $_SERVER['HTTP_WEBHOOK_TIMESTAMP'] ?? '',
        $_SERVER['HTTP_WEBHOOK_SIGNATURE'] ?? '', $body, time());
    if ($refusal !== null) {
        error_log("SSL webhook refused: $refusal");
        reply_json(401, ['error' => $refusal]);
    }
    $event = json_decode($body, true);
    $order = $event['data'] ?? null;
    if (!is_string($event['type'] ?? null) || !is_array($order) || !isset($order['id'], $order['account_id'])) {
        reply_json(400, ['error' => 'A webhook needs a type and the order in data.']);
    }
    execute('INSERT INTO webhooks (webhook_id, type, account_id, order_id, body) VALUES (?, ?, ?, ?, ?)'
        . ' ON CONFLICT (webhook_id) DO UPDATE SET deliveries = deliveries + 1',
        [$id, $event['type'], (string) $order['account_id'], (int) $order['id'], $body]);
    remember_order($order, (string) ($event['timestamp'] ?? ''));
    reply_json(200, ['received' => $id]);
}

/** The order as the newest webhook describes it (a late retry never turns it back). */
function remember_order(array $order, string $event_at): void
{
    execute('INSERT INTO ssl_orders (order_id, account_id, domain, status, provider_order_id, approver_email, not_after, event_at)'
        . ' VALUES (?, ?, ?, ?, ?, ?, ?, ?)'
        . ' ON CONFLICT (order_id) DO UPDATE SET status = excluded.status,'
        . ' provider_order_id = excluded.provider_order_id, approver_email = excluded.approver_email,'
        . ' not_after = excluded.not_after, event_at = excluded.event_at'
        . ' WHERE excluded.event_at >= ssl_orders.event_at', [
            (int) $order['id'], (string) $order['account_id'], (string) ($order['domain'] ?? ''),
            (string) ($order['status'] ?? ''), (string) ($order['provider_order_id'] ?? ''),
            (string) ($order['approver_email'] ?? ''), (string) ($order['not_after'] ?? ''), $event_at,
        ]);
}

/**
 * POST an event to the service (renewal-due, tick, account-updated, logout), signed with the
 * event key and carrying a random id (the service takes each id once: a replay is refused); the
 * reply is what `panel-ssl event <name>` prints: {"ok": true, ...} or {"ok": false, "error": ...}.
 */
function post_event(string $name, array $payload): array
{
    $url = config()['service_url'] . "/ssl/bridge/events/$name";
    $body = json_encode(['id' => 'evt_' . bin2hex(random_bytes(16))] + $payload);
    $headers = ['Content-Type' => 'application/json'] + event_headers(config()['secret'], $body, time());
    $lines = array_map(fn ($key, $value) => "$key: $value", array_keys($headers), $headers);
    $context = stream_context_create(['http' => [
        'method' => 'POST', 'header' => implode("\r\n", $lines), 'content' => $body,
        'timeout' => 20, 'ignore_errors' => true, // read the service's error replies too
    ]]);
    $reply = @file_get_contents($url, false, $context);
    if ($reply === false) {
        return ['ok' => false, 'error' => "The SSL service at {$url} did not answer."];
    }
    $answer = json_decode($reply, true);
    if (!is_array($answer)) {
        $status = $http_response_header[0] ?? 'no status';
        return ['ok' => false, 'error' => "The SSL service answered $status, not JSON."];
    }
    return $answer;
}

function reply_json(int $status, array $body): never
{
    http_response_code($status);
    header('Content-Type: application/json');
    echo json_encode($body, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
    exit;
}
