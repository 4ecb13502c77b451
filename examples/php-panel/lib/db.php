<?php
// The panel's own data: users, clients and their contacts, and what the SSL service gave it to
// keep (mail, published validation records, webhooks). SQLite through PDO, created and seeded
// on first run.

const SCHEMA = <<<'SQL'
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'reseller'))
);
CREATE TABLE IF NOT EXISTS clients (
    id INTEGER PRIMARY KEY,
    reseller_id INTEGER NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    organization TEXT NOT NULL DEFAULT '',
    address TEXT NOT NULL DEFAULT '',
    postal_code TEXT NOT NULL DEFAULT '',
    city TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT '',
    country TEXT NOT NULL DEFAULT '',
    phone TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS contacts (
    id INTEGER PRIMARY KEY,
    client_id INTEGER NOT NULL REFERENCES clients(id),
    is_default INTEGER NOT NULL DEFAULT 0,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    email TEXT NOT NULL,
    phone TEXT NOT NULL DEFAULT ''
);
-- Files and DNS records the service asked the panel to publish for validation.
CREATE TABLE IF NOT EXISTS published (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('http', 'dns')),
    domain TEXT NOT NULL,
    name TEXT NOT NULL,
    record_type TEXT NOT NULL DEFAULT '',
    value TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
-- The mail the service sent through the panel (the sandbox's approval links land here), filed
-- under the client it is about (the service's account_id; NULL: the admin's alone).
CREATE TABLE IF NOT EXISTS mail (
    id INTEGER PRIMARY KEY,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    account_id TEXT,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
-- Each verified webhook once, by its webhook-id: a retry only counts another delivery.
CREATE TABLE IF NOT EXISTS webhooks (
    id INTEGER PRIMARY KEY,
    webhook_id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    account_id TEXT NOT NULL,
    order_id INTEGER,
    body TEXT NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 1,
    received_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
-- The SSL orders as the webhooks told them: whose they are, and where they stand.
CREATE TABLE IF NOT EXISTS ssl_orders (
    order_id INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL,
    domain TEXT NOT NULL,
    status TEXT NOT NULL,
    provider_order_id TEXT NOT NULL DEFAULT '',
    approver_email TEXT NOT NULL DEFAULT '',
    not_after TEXT NOT NULL DEFAULT '',
    event_at TEXT NOT NULL
);
SQL;

// Demo users: each password is the user name (demo only).
const DEMO_USERS = [
    ['admin', 'Ada Admin', 'admin'],
    ['alice', 'Alice Reseller', 'reseller'],
    ['bob', 'Bob Reseller', 'reseller'],
];

// reseller => clients, each with its contacts (the first is the default contact)
const DEMO_CLIENTS = [
    'alice' => [
        [
            ['name' => 'Bäckerei Müller', 'organization' => 'Bäckerei Müller GmbH',
             'address' => 'Hauptstraße 12', 'postal_code' => '80331', 'city' => 'München',
             'state' => 'Bayern', 'country' => 'DE', 'phone' => '+49 89 123450'],
            [['Hans', 'Müller', 'hans@baeckerei-mueller.example', '+49 89 123456']],
        ],
        [
            ['name' => 'Acme Widgets', 'organization' => 'Acme Widgets Ltd',
             'address' => '100 Canyon Road', 'postal_code' => '95134', 'city' => 'San Jose',
             'state' => 'California', 'country' => 'US', 'phone' => '+1 408 555 0199'],
            [['Wile', 'Coyote', 'wile@acme-widgets.example', '+1 408 555 0100'],
             ['Road', 'Runner', 'rr@acme-widgets.example', '+1 408 555 0101']],
        ],
    ],
    'bob' => [
        [
            ['name' => 'Nordic Fjord Tours', 'organization' => 'Nordic Fjord Tours AS',
             'address' => 'Bryggen 5', 'postal_code' => '5003', 'city' => 'Bergen',
             'state' => 'Vestland', 'country' => 'NO', 'phone' => '+47 55 123400'],
            [['Ingrid', 'Berg', 'ingrid@fjord-tours.example', '+47 55 123456']],
        ],
    ],
];

function db(): PDO
{
    static $pdo = null;
    if ($pdo === null) {
        $path = config()['database'];
        $pdo = new PDO("sqlite:$path", null, null, [
            PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
            PDO::ATTR_DEFAULT_FETCH_MODE => PDO::FETCH_ASSOC,
            // several php -S workers share the file: a statement waits up to 10 s for a lock.
            // (No WAL: switching a new file to it fails while another worker has it open.)
            PDO::ATTR_TIMEOUT => 10,
        ]);
        $pdo->exec('PRAGMA foreign_keys = ON');
        $pdo->exec(SCHEMA);
        upgrade_schema($pdo);
        seed_demo($pdo);
    }
    return $pdo;
}

/** A database made by an older copy of this panel: mail learned whose it is (account_id). */
function upgrade_schema(PDO $pdo): void
{
    $columns = array_column($pdo->query('PRAGMA table_info(mail)')->fetchAll(), 'name');
    if (!in_array('account_id', $columns, true)) {
        $pdo->exec('ALTER TABLE mail ADD COLUMN account_id TEXT');
    }
}

/** The demo users and clients, once: the first worker to get the write lock seeds. */
function seed_demo(PDO $pdo): void
{
    $pdo->exec('BEGIN IMMEDIATE');
    if ($pdo->query('SELECT COUNT(*) FROM users')->fetchColumn() > 0) {
        $pdo->exec('COMMIT');
        return;
    }
    $ids = [];
    foreach (DEMO_USERS as [$username, $name, $role]) {
        $pdo->prepare('INSERT INTO users (username, password_hash, name, role) VALUES (?, ?, ?, ?)')
            ->execute([$username, password_hash($username, PASSWORD_DEFAULT), $name, $role]);
        $ids[$username] = (int) $pdo->lastInsertId();
    }
    foreach (DEMO_CLIENTS as $reseller => $clients) {
        foreach ($clients as [$client, $people]) {
            $columns = implode(', ', array_keys($client));
            $marks = implode(', ', array_fill(0, count($client), '?'));
            $pdo->prepare("INSERT INTO clients (reseller_id, $columns) VALUES (?, $marks)")
                ->execute([$ids[$reseller], ...array_values($client)]);
            $client_id = (int) $pdo->lastInsertId();
            foreach ($people as $index => [$first, $last, $email, $phone]) {
                $pdo->prepare('INSERT INTO contacts (client_id, is_default, first_name, last_name, email, phone)'
                    . ' VALUES (?, ?, ?, ?, ?, ?)')
                    ->execute([$client_id, $index === 0 ? 1 : 0, $first, $last, $email, $phone]);
            }
        }
    }
    $pdo->exec('COMMIT');
}

function query(string $sql, array $params = []): array
{
    $statement = db()->prepare($sql);
    $statement->execute($params);
    return $statement->fetchAll();
}

function execute(string $sql, array $params = []): int
{
    $statement = db()->prepare($sql);
    $statement->execute($params);
    return $statement->rowCount();
}

/** The client if $user may see it (a reseller: only their own; the admin: every one), else null. */
function client_for(array $user, string $client_id): ?array
{
    $rows = query('SELECT * FROM clients WHERE id = ? AND (? = \'admin\' OR reseller_id = ?)',
        [$client_id, $user['role'], $user['id']]);
    return $rows[0] ?? null;
}

function clients_for(array $user): array
{
    return query('SELECT clients.*, users.name AS reseller FROM clients JOIN users ON users.id = reseller_id'
        . ' WHERE ? = \'admin\' OR reseller_id = ? ORDER BY clients.id', [$user['role'], $user['id']]);
}

/** The mail $user may read: about their own clients (the account the service named), all for the admin. */
function mail_for(array $user): array
{
    return query('SELECT mail.* FROM mail LEFT JOIN clients ON clients.id = mail.account_id'
        . ' WHERE ? = \'admin\' OR clients.reseller_id = ? ORDER BY mail.id DESC',
        [$user['role'], $user['id']]);
}

function webhooks_for(array $user): array
{
    return query('SELECT webhooks.* FROM webhooks LEFT JOIN clients ON clients.id = webhooks.account_id'
        . ' WHERE ? = \'admin\' OR clients.reseller_id = ? ORDER BY webhooks.id DESC',
        [$user['role'], $user['id']]);
}
