<?php
// The panel's settings, from the environment (the same names `panel-ssl serve` reads).

/** The settings; the secret is the one `panel-ssl serve` has (the variable wins over the file). */
function config(): array
{
    static $config = null;
    if ($config === null) {
        $secret = (string) getenv('PANEL_SSL_BRIDGE_SECRET');
        $file = getenv('PANEL_SSL_BRIDGE_SECRET_FILE');
        if ($secret === '' && $file) {
            $secret = trim((string) @file_get_contents($file));
        }
        if (strlen($secret) < 32) {
            http_response_code(500); // a page says it; cron.php prints it and exits 1
            echo "Set PANEL_SSL_BRIDGE_SECRET (or PANEL_SSL_BRIDGE_SECRET_FILE) to the SSL service's bridge secret, 32 characters or more.\n";
            exit(1);
        }
        $config = [
            'secret' => $secret,
            'service_url' => rtrim(getenv('PANEL_SSL_SERVICE_URL') ?: 'http://127.0.0.1:8001', '/'),
            'database' => getenv('PHP_PANEL_DATABASE') ?: dirname(__DIR__) . '/panel.sqlite',
        ];
    }
    return $config;
}
