"""Settings for the demo and the test suite.

SQLite by default.  ``MCFIELDS_TEST_DB=postgres`` switches to a PostgreSQL
server described by the usual libpq variables (PGHOST, PGPORT, PGUSER,
PGPASSWORD, PGDATABASE); `.ci/run` starts one.
"""

import importlib.util
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent

# Demo-only secrets: this project is never deployed.
SECRET_KEY = "testproject-demo-only-not-a-secret"
DEBUG = True
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "mcfields",
    "testproject.demo",
    # Apps used only by the test suite (rotation and adoption of plaintext
    # columns); they carry their own migrations.
    "tests.rotation.rotapp",
    "tests.adoption.adoptapp",
    "tests.writes.writeapp",
    # Editable encrypted binary fields for the forms and DRF tests.
    "tests.forms.formsapp",
    # Every typed encrypted field (tests/typed).
    "tests.typed.typesapp",
    # Searchable fields (blind indexes).
    "tests.search.searchapp",
]
# Django REST Framework when it is installed (the test extra; `make demo`
# installs without it): mcfields registers its serializer fields then.
if importlib.util.find_spec("rest_framework") is not None:
    INSTALLED_APPS.append("rest_framework")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "testproject.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "testproject.wsgi.application"

if os.environ.get("MCFIELDS_TEST_DB") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ.get("PGHOST", "localhost"),
            "PORT": os.environ.get("PGPORT", "5432"),
            "USER": os.environ.get("PGUSER", "mcfields"),
            "PASSWORD": os.environ.get("PGPASSWORD", "mcfields"),
            "NAME": os.environ.get("PGDATABASE", "mcfields"),
        }
    }
    # A second database for the tests of read-replica routers (writes must
    # go where the router sends writes); only tests that ask for it use it.
    DATABASES["replica"] = dict(
        DATABASES["default"],
        TEST={"NAME": "test_" + DATABASES["default"]["NAME"] + "_replica"},
    )
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("MCFIELDS_SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
        },
        # A second database for the tests of read-replica routers; only
        # tests that ask for it use it (in memory while testing).
        "replica": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(BASE_DIR / "replica.sqlite3"),
        },
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
STATIC_URL = "static/"

# Demo keys (never use these anywhere else).  The first seals; all open.
# Override with MCFIELDS_KEYS="key1,key2" in the environment.
MCFIELDS_KEYS = [
    k for k in os.environ.get(
        "MCFIELDS_KEYS",
        "yQdKUEt1Y0kKT2GZc7D2UHP7nvyrn2Ky6TguP3tfx1Q=",
    ).split(",") if k
]
