<?php
// What the panel's cron runs every minute or so: `php cron.php` asks the SSL service to check
// its pending orders now (the "tick" event), as a host's scheduler would. Same settings as the
// web pages (PANEL_SSL_SERVICE_URL, PANEL_SSL_BRIDGE_SECRET).

declare(strict_types=1);

require __DIR__ . '/lib/config.php';
require __DIR__ . '/lib/signing.php';
require __DIR__ . '/lib/service.php';

$reply = post_event('tick', []);
echo json_encode($reply), "\n";
exit(($reply['ok'] ?? false) ? 0 : 1);
