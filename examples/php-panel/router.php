<?php
// The PHP panel's front controller: php -S 127.0.0.1:8080 router.php

declare(strict_types=1);

require __DIR__ . '/lib/config.php';
require __DIR__ . '/lib/signing.php';
require __DIR__ . '/lib/db.php';
require __DIR__ . '/lib/service.php';
require __DIR__ . '/lib/pages.php';

$method = $_SERVER['REQUEST_METHOD'];
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);

// Machine-to-machine: signed by the service, no session.
if ($method === 'POST' && $path === '/bridge') {
    handle_bridge();
}
if ($method === 'POST' && $path === '/hooks/ssl') {
    handle_webhook();
}
if ($method === 'GET' && str_starts_with($path, '/.well-known/')) {
    well_known(substr($path, 1));
}

session_name('php_panel');
session_start(['cookie_httponly' => true, 'cookie_samesite' => 'Lax']);

if ($path === '/login') {
    login_page();
}
$user = require_user();
match (true) {
    $path === '/' => redirect('/clients'),
    $method === 'POST' && $path === '/logout' => logout(),
    $path === '/clients' => clients_page($user),
    $path === '/mail' => mail_page($user),
    $path === '/webhooks' => webhooks_page($user),
    $path === '/admin/ssl' => launch_admin($user),
    (bool) preg_match('~^/clients/(\d+)$~', $path, $m) => client_page($user, $m[1]),
    (bool) preg_match('~^/clients/(\d+)/ssl/(order|certs)$~', $path, $m) => launch($user, $m[1], $m[2]),
    $method === 'POST' && (bool) preg_match('~^/clients/(\d+)/bill-renewal$~', $path, $m) => bill_renewal($user, $m[1]),
    default => page_error(404, 'There is no such page.'),
};
