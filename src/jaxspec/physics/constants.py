"""Physical constants (CODATA 2018) in the units jaxspec uses.

Velocities are in km/s and wavelengths in Angstrom throughout the library;
the cgs constants below feed the line-formation physics.
"""

C_KMS = 299792.458  # speed of light [km/s]
C_CGS = 2.99792458e10  # speed of light [cm/s]
H_CGS = 6.62607015e-27  # Planck constant [erg s]
K_CGS = 1.380649e-16  # Boltzmann constant [erg/K]
K_EV = 8.617333262e-5  # Boltzmann constant [eV/K]
EV_ERG = 1.602176634e-12  # 1 eV in erg
M_E_CGS = 9.1093837015e-28  # electron mass [g]
E_ESU = 4.80320471e-10  # electron charge [esu]
AMU_CGS = 1.66053906660e-24  # atomic mass unit [g]
A0_CM = 5.29177210903e-9  # Bohr radius [cm]
ANGSTROM_CM = 1e-8
# pi e^2 / (m_e c): classical integrated line cross-section per unit gf [cm^2 s^-1]
PI_E2_MC = 3.141592653589793 * E_ESU**2 / (M_E_CGS * C_CGS)
