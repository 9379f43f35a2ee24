# Sourced by the build scripts, from the checkout root. ccache then keys
# objects by paths relative to the checkout and leaves the build folder's
# absolute path out of the hash, so a clone in any folder hits what another
# clone (or an earlier CI run elsewhere) put in the cache.
export CCACHE_BASEDIR="$PWD"
export CCACHE_NOHASHDIR=1
