"""Packaging for genprior_nb: every field is read from settings.ini (nbdev 2 layout)."""
from configparser import ConfigParser
import setuptools

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

licenses = {'apache2': 'Apache-2.0'}  # SPDX expression (license classifiers are deprecated)
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive']
py_versions = '3.10 3.11 3.12 3.13'.split()
min_python = cfg['min_python']
lic = licenses[cfg['license']]

requirements = cfg.get('requirements', '').split()
dev_requirements = cfg.get('dev_requirements', '').split()
deepinv_requirements = cfg.get('deepinv_requirements', '').split()  # the optional extra genprior_nb[deepinv] (module interop)
scripts = [s for s in cfg.get('console_scripts', '').split() if s]

setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    author=cfg['author'],
    author_email=cfg['author_email'],
    license=lic,
    url=cfg['git_url'],
    keywords=cfg['keywords'].split(),
    classifiers=['Development Status :: ' + statuses[int(cfg['status'])],
                 'Intended Audience :: ' + cfg['audience'].title(),
                 'Natural Language :: ' + cfg['language'].title()] +
                ['Programming Language :: Python :: ' + v for v in py_versions[py_versions.index(min_python):]],
    # the data folders (weights/, tuning/) are namespace packages of their own, so setuptools ships them without warnings
    packages=setuptools.find_namespace_packages(include=['genprior_nb', 'genprior_nb.*']),
    include_package_data=True,
    package_data={'genprior_nb.weights': ['*.pt', '*.json'], 'genprior_nb.weights.classifier': ['*.pt', '*.json'],
                  'genprior_nb.weights.desyre': ['*.pt', '*.json'], 'genprior_nb.weights.amortised': ['*.pt', '*.json'],
                  'genprior_nb.tuning': ['*.csv']},
    install_requires=requirements,
    extras_require={'dev': dev_requirements, 'browser': ['selenium>=4'], 'deepinv': deepinv_requirements},
    python_requires='>=' + min_python,
    zip_safe=False,
    entry_points={'console_scripts': scripts, 'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
)
