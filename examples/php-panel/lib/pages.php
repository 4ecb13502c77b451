<?php
// The panel's pages: log-in, clients with their Account Mgmt tab, mail, webhooks.

function h(?string $text): string
{
    return htmlspecialchars($text ?? '', ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
}

function current_user(): ?array
{
    $id = $_SESSION['user_id'] ?? null;
    return $id === null ? null : (query('SELECT id, username, name, role FROM users WHERE id = ?', [$id])[0] ?? null);
}

function require_user(): array
{
    $user = current_user();
    if ($user === null) {
        redirect('/login');
    }
    return $user;
}

function csrf_token(): string
{
    return $_SESSION['csrf'] ??= bin2hex(random_bytes(16));
}

function csrf_field(): string
{
    return '<input type="hidden" name="csrf" value="' . h(csrf_token()) . '">';
}

/** A form field as text ('' when missing, or when a crafted request sends a list). */
function posted(string $name): string
{
    $value = $_POST[$name] ?? '';
    return is_string($value) ? $value : '';
}

/** Every POST from a page carries the session's token, so another site cannot post for you. */
function check_csrf(): void
{
    if (!hash_equals(csrf_token(), posted('csrf'))) {
        page_error(400, 'This form has expired; go back, reload the page and try again.');
    }
}

function redirect(string $location): never
{
    header("Location: $location", true, 302);
    exit;
}

function flash(string $message): void
{
    $_SESSION['flash'][] = $message;
}

function layout(string $title, string $content, ?array $user = null): never
{
    $nav = '';
    if ($user !== null) {
        $nav = '<nav><a href="/clients">Clients</a> <a href="/mail">Mail</a> <a href="/webhooks">Webhooks</a>'
            . ($user['role'] === 'admin' ? ' <a href="/admin/ssl" target="_blank">SSL Providers</a>' : '')
            . '<form method="post" action="/logout">' . csrf_field() . h($user['name'])
            . ' <button>Log out</button></form></nav>';
    }
    $messages = '';
    foreach ($_SESSION['flash'] ?? [] as $message) {
        $messages .= '<p class="flash">' . h($message) . '</p>';
    }
    unset($_SESSION['flash']);
    echo '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>' . h($title)
        . ' · PHP Panel</title><style>' . STYLE . '</style></head><body><header><b>PHP Panel</b>'
        . $nav . '</header><main><h1>' . h($title) . "</h1>$messages$content</main></body></html>";
    exit;
}

function page_error(int $status, string $sentence): never
{
    http_response_code($status);
    layout('Sorry', '<p>' . h($sentence) . '</p>', current_user());
}

const STYLE = <<<'CSS'
body { font: 15px/1.4 system-ui, sans-serif; margin: 0; color: #222; }
header { background: #2d3e50; color: #fff; padding: 10px 20px; display: flex; gap: 30px; }
header nav { display: flex; gap: 16px; flex: 1; } header nav a { color: #fff; }
header form { margin-left: auto; }
main { padding: 10px 20px; }
table { border-collapse: collapse; margin: 10px 0; font-size: 14px; } td, th { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }
td:first-child, td.status { white-space: nowrap; } code { font-size: 12px; }
.tabs a { display: inline-block; padding: 6px 14px; border: 1px solid #ccc; border-bottom: none; }
.tabs a.active { background: #eee; font-weight: bold; }
.orange-bar { background: #f39c12; padding: 8px; display: flex; gap: 10px; }
.orange-bar a { background: #fff; padding: 4px 12px; border-radius: 3px; color: #333; text-decoration: none; font-weight: bold; }
.flash { background: #fff3cd; padding: 6px 10px; }
.verified { color: #1a7f37; font-weight: bold; }
pre { background: #f6f6f6; padding: 8px; white-space: pre-wrap; overflow-wrap: anywhere; }
CSS;

function login_page(): never
{
    if ($_SERVER['REQUEST_METHOD'] === 'POST') {
        check_csrf();
        $rows = query('SELECT * FROM users WHERE username = ?', [posted('username')]);
        if ($rows && password_verify(posted('password'), $rows[0]['password_hash'])) {
            session_regenerate_id(true);
            $_SESSION['user_id'] = $rows[0]['id'];
            redirect('/clients');
        }
        flash('Wrong user name or password.');
    }
    layout('Log in', '<form method="post">' . csrf_field()
        . '<p><label>User name <input name="username" autofocus></label></p>'
        . '<p><label>Password <input name="password" type="password"></label></p>'
        . '<p><button>Log in</button></p></form><p>Demo users: admin, alice, bob (password = user name).</p>');
}

/** Log out here, and end the user's sessions at the SSL service too (its popups stay open otherwise). */
function logout(): never
{
    check_csrf();
    $user = current_user();
    session_destroy();
    if ($user !== null) {
        post_event('logout', ['user' => (string) $user['id']]);
    }
    redirect('/login');
}

function clients_page(array $user): never
{
    $rows = '';
    foreach (clients_for($user) as $client) {
        $rows .= '<tr><td><a href="/clients/' . h($client['id']) . '">' . h($client['name']) . '</a></td><td>'
            . h($client['organization']) . '</td><td>' . h($client['country']) . '</td><td>' . h($client['reseller']) . '</td></tr>';
    }
    layout('Clients', "<table><tr><th>Client</th><th>Organization</th><th>Country</th><th>Reseller</th></tr>$rows</table>", $user);
}

/** A client: the Summary tab, or Account Mgmt with the SSL links and the certificates to bill. */
function client_page(array $user, string $client_id): never
{
    $client = client_for($user, $client_id) ?? page_error(404, 'You have no client with this number.');
    $tab = ($_GET['tab'] ?? '') === 'account' ? 'account' : 'summary';
    $url = '/clients/' . h($client['id']);
    $tabs = '<p class="tabs"><a href="' . $url . '" class="' . ($tab === 'summary' ? 'active' : '') . '">Summary</a>'
        . '<a href="' . $url . '?tab=account" class="' . ($tab === 'account' ? 'active' : '') . '">Account Mgmt</a></p>';
    layout($client['name'], $tabs . ($tab === 'account' ? account_tab($client) : summary_tab($client)), $user);
}

function summary_tab(array $client): string
{
    $address = implode(', ', array_filter([$client['address'], $client['postal_code'] . ' ' . $client['city'],
        $client['state'], $client['country']], fn ($part) => trim($part) !== ''));
    $rows = '';
    foreach (query('SELECT * FROM contacts WHERE client_id = ? ORDER BY is_default DESC, id', [$client['id']]) as $contact) {
        $rows .= '<tr><td>' . h($contact['first_name'] . ' ' . $contact['last_name']) . '</td><td>'
            . h($contact['email']) . '</td><td>' . h($contact['phone']) . '</td></tr>';
    }
    return '<p>' . h($client['organization']) . '<br>' . h($address) . '<br>' . h($client['phone']) . '</p>'
        . "<h2>Contacts</h2><table><tr><th>Name</th><th>E-mail</th><th>Phone</th></tr>$rows</table>";
}

/**
 * The orange bar: each link goes through this panel, which signs a launch token for the user and
 * this client at the moment of the click (tokens are single use and live two minutes).
 */
function account_tab(array $client): string
{
    $base = '/clients/' . h($client['id']) . '/ssl/';
    $bar = '<div class="orange-bar"><a href="' . $base . 'order" target="_blank">Order SSL Cert</a>'
        . '<a href="' . $base . 'certs" target="_blank">List SSL Certs</a></div>';
    $rows = '';
    foreach (query('SELECT * FROM ssl_orders WHERE account_id = ? ORDER BY order_id DESC', [$client['id']]) as $order) {
        $bill = '';
        if ($order['status'] === 'issued') {
            $bill = '<form method="post" action="/clients/' . h($client['id']) . '/bill-renewal">' . csrf_field()
                . '<input type="hidden" name="certificate_id" value="' . h($order['order_id']) . '">'
                . '<button>Bill renewal</button> (12 months)</form>';
        }
        $rows .= '<tr><td>#' . h($order['order_id']) . '</td><td>' . h($order['domain']) . '</td><td>'
            . h($order['status']) . '</td><td>' . h(substr($order['not_after'], 0, 10)) . "</td><td>$bill</td></tr>";
    }
    return $bar . '<h2>SSL certificates</h2><p>As the SSL service\'s webhooks reported them.</p>'
        . "<table><tr><th>Order</th><th>Domain</th><th>Status</th><th>Valid until</th><th>Billing</th></tr>$rows</table>";
}

/** GET /clients/<id>/ssl/<order|certs>: sign a launch token and send the browser to the service. */
function launch(array $user, string $client_id, string $target): never
{
    $client = client_for($user, $client_id) ?? page_error(403, 'You may not manage SSL for this client.');
    $token = launch_token(config()['secret'], $user, (string) $client['id'], $target, time());
    redirect(config()['service_url'] . '/ssl/launch?token=' . $token);
}

/** GET /admin/ssl: the service's admin pages (provider accounts), for the panel's admin only. */
function launch_admin(array $user): never
{
    if ($user['role'] !== 'admin') {
        page_error(403, 'Only the panel\'s admin manages SSL providers.');
    }
    // The admin pages belong to no client, but the token's account claim is required: "-" names none.
    redirect(config()['service_url'] . '/ssl/launch?token=' . launch_token(config()['secret'], $user, '-', 'admin', time()));
}

/** POST /clients/<id>/bill-renewal: what the billing does when a renewal is paid. */
function bill_renewal(array $user, string $client_id): never
{
    check_csrf();
    $client = client_for($user, $client_id) ?? page_error(404, 'You have no client with this number.');
    $reply = post_event('renewal-due', [
        'account_id' => (string) $client['id'],
        'certificate_id' => (int) posted('certificate_id'),
        'period_months' => 12,
    ]);
    flash(($reply['ok'] ?? false)
        ? "Renewal billed: the SSL service made renewal order #{$reply['renewal_order_id']}."
        : 'The SSL service refused the renewal: ' . ($reply['error'] ?? 'no reason given'));
    redirect("/clients/{$client['id']}?tab=account");
}

function mail_page(array $user): never
{
    $items = '';
    foreach (mail_for($user) as $mail) {
        // Links in the mail are made clickable; everything else stays text.
        $body = preg_replace('~https?://[^\s<]+~', '<a href="$0" target="_blank">$0</a>', h($mail['body']));
        $items .= '<article><h3>' . h($mail['subject']) . '</h3><p>To ' . h($mail['recipient']) . ' · '
            . h($mail['created_at']) . " UTC</p><pre>$body</pre></article>";
    }
    layout('Mail', $items ?: '<p>No mail yet.</p>', $user);
}

function webhooks_page(array $user): never
{
    $rows = '';
    foreach (webhooks_for($user) as $hook) {
        $order = json_decode($hook['body'], true)['data'] ?? [];
        $status = isset($order['old'], $order['new']) ? "{$order['old']} → {$order['new']}" : ($order['status'] ?? '');
        $rows .= '<tr><td>' . h($hook['received_at']) . '</td><td>' . h($hook['type']) . '</td><td>#'
            . h($hook['order_id']) . ' ' . h($order['domain'] ?? '') . '</td><td class="status">' . h($status)
            . '</td><td><code>' . h($hook['webhook_id']) . '</code></td><td>' . h($hook['deliveries'])
            . '</td><td class="verified">signature verified</td></tr>';
    }
    layout('Webhooks', '<p>What the SSL service reported, each event once by its webhook-id; Sent counts deliveries (retries add one).</p>'
        . '<table><tr><th>Received (UTC)</th><th>Type</th><th>Order</th><th>Status</th><th>webhook-id</th>'
        . "<th>Sent</th><th>Signature</th></tr>$rows</table>", $user);
}

/** GET /.well-known/...: a validation file the service asked the panel to publish. */
function well_known(string $path): never
{
    $rows = query("SELECT value FROM published WHERE kind = 'http' AND name = ? ORDER BY id DESC LIMIT 1", [ltrim($path, '/')]);
    if (!$rows) {
        http_response_code(404);
        exit;
    }
    header('Content-Type: text/plain');
    echo $rows[0]['value'];
    exit;
}
