#!/bin/sh
# Installs Autobahn|Testsuite's `wstest` without Docker, into a private prefix.
#
# wstest needs Python 2.7, which Debian 12 no longer ships: this unpacks the
# python2.7 packages of Debian 11 (bullseye) into PREFIX (nothing is installed
# system-wide), bootstraps the last pip for 2.7, installs the autobahntestsuite
# package and its dependencies at the versions pinned in
# wstest-requirements.txt (beside this script) from the Python package index,
# and writes PREFIX/wstest.  About 30 s with a warm pip cache.
#
#   usage: install-wstest.sh [PREFIX]      (default: $HOME/.cache/autobahn-wstest)
#   then:  PREFIX/wstest -m fuzzingclient -s autobahn-config/fuzzingclient.json
#
# autobahn-config/run.py calls it when it finds no wstest; CI calls it with a
# new PREFIX on every run.  Idempotent: it does nothing when PREFIX/wstest
# already runs.
set -eu
PREFIX=${1:-${HOME:-/root}/.cache/autobahn-wstest}
HERE=$(cd "$(dirname "$0")" && pwd)
REQUIREMENTS=$HERE/wstest-requirements.txt
mkdir -p "$PREFIX"
PREFIX=$(cd "$PREFIX" && pwd)

if [ -x "$PREFIX/wstest" ] && "$PREFIX/wstest" --help >/dev/null 2>&1; then
    echo "wstest ready: $PREFIX/wstest"
    exit 0
fi

command -v apt-get >/dev/null || { echo "install-wstest: needs apt-get (Debian/Ubuntu)" >&2; exit 1; }
command -v cc >/dev/null || { echo "install-wstest: needs a C compiler (cc)" >&2; exit 1; }

# Use the Debian mirror this machine is already configured with, bullseye suite.
mirror=$(grep -h -o -E '^(URIs:|deb) +[^ ]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
         | awk '{print $2}' | grep -v security | grep -E '/debian/?$' | head -n 1)
[ -n "$mirror" ] || { echo "install-wstest: no Debian mirror found in the apt sources" >&2; exit 1; }

apt_dir="$PREFIX/apt"
mkdir -p "$apt_dir/lists/partial" "$PREFIX/debs"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bullseye main" > "$apt_dir/sources.list"
o="-o Dir::Etc::SourceList=$apt_dir/sources.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=$apt_dir/lists -o Debug::NoLocking=1"
echo "install-wstest: fetching Python 2.7 packages (Debian bullseye)"
apt-get -q $o update >/dev/null
(cd "$PREFIX/debs" && apt-get -q $o download \
    python2.7 python2.7-minimal libpython2.7-stdlib libpython2.7-minimal \
    libpython2.7 libpython2.7-dev python2.7-dev libssl1.1 libffi7 >/dev/null)
mkdir -p "$PREFIX/root"
for deb in "$PREFIX"/debs/*.deb; do dpkg -x "$deb" "$PREFIX/root"; done

echo "install-wstest: bootstrapping pip for Python 2.7"
python3 -m pip download -q --no-deps -d "$PREFIX/wheels" pip==20.3.4 setuptools==44.1.1 wheel==0.37.1

PY="$PREFIX/root/usr/bin/python2.7"
export PYTHONHOME="$PREFIX/root/usr"
export LD_LIBRARY_PATH="$PREFIX/root/usr/lib/x86_64-linux-gnu:$PREFIX/root/lib/x86_64-linux-gnu"
export CFLAGS="-I$PREFIX/root/usr/include/python2.7 -I$PREFIX/root/usr/include"
export LDFLAGS="-L$PREFIX/root/usr/lib/x86_64-linux-gnu"
site="$PREFIX/site/lib/python2.7/site-packages"

pipwhl=$(ls "$PREFIX"/wheels/pip-20.3.4-*.whl)
"$PY" "$pipwhl/pip" install -q --no-warn-script-location --no-cache-dir --prefix "$PREFIX/site" "$PREFIX"/wheels/*.whl
echo "install-wstest: installing the pinned autobahntestsuite ($REQUIREMENTS)"
PYTHONPATH="$site" "$PY" -m pip install -q --no-warn-script-location --no-cache-dir --no-deps \
    --prefix "$PREFIX/site" -r "$REQUIREMENTS"

cat > "$PREFIX/wstest" <<WRAP
#!/bin/sh
# Autobahn|Testsuite wstest on the private Python 2.7 beside this file.
export PYTHONHOME="$PREFIX/root/usr"
export LD_LIBRARY_PATH="$PREFIX/root/usr/lib/x86_64-linux-gnu:$PREFIX/root/lib/x86_64-linux-gnu"
exec "$PY" -c "import site, sys; site.addsitedir('$site'); sys.argv[0] = 'wstest'; from autobahntestsuite.wstest import run; run()" "\$@"
WRAP
chmod +x "$PREFIX/wstest"
"$PREFIX/wstest" --help >/dev/null
echo "wstest ready: $PREFIX/wstest"
